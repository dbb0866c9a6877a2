import { create as contentDisposition } from 'content-disposition';
import fc from 'fast-check';
import { RangeNotSatisfiable } from '../../src/errors';
import { cleanOriginalName, MAX_NAME_LENGTH, MAX_ORIGINAL_NAME_LENGTH, sanitizeFilename } from '../../src/files/names';
import { requestedRange } from '../../src/routes/download';

/** Property-based tests: for any input, the guarantees hold (fast-check shrinks a failure to its smallest case). */

const CONTROL_OR_BIDI = /[\p{Cc}\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;
const LONE_SURROGATE = /\p{Cs}/u;

/** Names made of the characters that matter: separators, dots, controls, bidi marks, spaces, astral and combining characters. */
const nastyChar = fc.oneof(
  fc.constantFrom('/', '\\', '.', '..', ' ', '\t', '\r', '\n', '\u0000', '\u0007', '\u001b', '\u007f', '\u0085', '\u061c', '\u200e', '\u200f'),
  fc.constantFrom('\u202a', '\u202b', '\u202c', '\u202d', '\u202e', '\u2066', '\u2067', '\u2068', '\u2069', '\u200d', '\ufeff', '\u2028'),
  fc.constantFrom('e\u0301', '😀', '👩‍👩‍👧', '東', 'Ø', ':', '*', '?', '"', '<', '>', '|', '%0A', '%0D', '\ud800', '\udfff'),
  fc.string({ unit: 'grapheme', maxLength: 3 }),
);
const nastyName = fc.oneof(
  fc.array(nastyChar, { maxLength: 40 }).map((parts) => parts.join('')),
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.tuple(fc.string({ maxLength: 20 }), fc.nat({ max: 6000 }), fc.constantFrom('.xlsx', '.pdf', '.tar.gz', '', '.averyveryverylongextension'))
    .map(([stem, n, ext]) => `${stem}${'a'.repeat(n)}${ext}`),
);

describe('sanitizeFilename', () => {
  it('never yields a path, a dot name, control or bidi characters, lone surrogates, an empty name, or more than the cap', () => {
    fc.assert(
      fc.property(nastyName, (input) => {
        const name = sanitizeFilename(input);
        expect(name.length).toBeGreaterThan(0);
        expect([...name].length).toBeLessThanOrEqual(MAX_NAME_LENGTH);
        expect(name).not.toMatch(/[/\\]/);
        expect(name).not.toMatch(/^\./);
        expect(name === '.' || name === '..').toBe(false);
        expect(name).not.toMatch(CONTROL_OR_BIDI);
        expect(name).not.toMatch(LONE_SURROGATE);
        expect(name).toBe(name.trim());
        // It always makes a valid Content-Disposition header.
        expect(() => contentDisposition(name, { type: 'attachment' })).not.toThrow();
        expect(contentDisposition(name, { type: 'attachment' })).not.toMatch(/[\r\n\u0000]/);
      }),
      { numRuns: 3000 },
    );
  });

  it('keeps a short extension when it cuts a long name', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 5 }).filter((s) => /^[a-z0-9]+$/i.test(s)), fc.integer({ min: 201, max: 6000 }), (ext, n) => {
        const name = sanitizeFilename(`${'x'.repeat(n)}.${ext}`);
        expect([...name]).toHaveLength(MAX_NAME_LENGTH);
        expect(name.endsWith(`.${ext}`)).toBe(true);
      }),
    );
  });

  it('is idempotent: a sanitised name stays as it is', () => {
    fc.assert(
      fc.property(nastyName, (input) => expect(sanitizeFilename(sanitizeFilename(input))).toBe(sanitizeFilename(input))),
      { numRuns: 3000 },
    );
  });
});

describe('cleanOriginalName', () => {
  it('never keeps control or bidi characters or lone surrogates, and is at most the cap', () => {
    fc.assert(
      fc.property(nastyName, (input) => {
        const name = cleanOriginalName(input);
        expect(name).not.toMatch(CONTROL_OR_BIDI);
        expect(name).not.toMatch(LONE_SURROGATE);
        expect([...name].length).toBeLessThanOrEqual(MAX_ORIGINAL_NAME_LENGTH);
      }),
      { numRuns: 3000 },
    );
  });

  it('leaves an ordinary name exactly as the client sent it', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 100 }).filter((s) => !CONTROL_OR_BIDI.test(s)), (input) => {
        expect(cleanOriginalName(input)).toBe(input);
      }),
    );
  });
});

describe('requestedRange', () => {
  const rangeHeader = fc.oneof(
    fc.string({ maxLength: 40 }),
    fc
      .tuple(
        fc.constantFrom('bytes', 'Bytes', 'items', '', 'bytes '),
        fc.array(fc.tuple(fc.option(fc.oneof(fc.nat(), fc.integer({ min: -3, max: 3 }), fc.constant(Number.MAX_SAFE_INTEGER + 2))), fc.option(fc.nat())), { minLength: 1, maxLength: 4 }),
        fc.constantFrom('', ',', ' ', 'x'),
      )
      .map(([unit, ranges, trailer]) => `${unit}=${ranges.map(([a, b]) => `${a ?? ''}-${b ?? ''}`).join(',')}${trailer}`),
  );
  const size = fc.oneof(fc.nat({ max: 10 }), fc.nat({ max: 2 ** 40 }));

  it('answers the whole file, a range inside the file, or 416, for any size and Range header, and never throws anything else', () => {
    fc.assert(
      fc.property(size, rangeHeader, fc.option(fc.constantFrom('"etag"', '"other"')), (size, header, ifRange) => {
        let range: ReturnType<typeof requestedRange>;
        try {
          range = requestedRange(size, header, ifRange ?? undefined, '"etag"');
        } catch (err) {
          expect(err).toBeInstanceOf(RangeNotSatisfiable);
          return;
        }
        if (range === undefined) return;
        expect(Number.isSafeInteger(range.start) && Number.isSafeInteger(range.end)).toBe(true);
        expect(range.start).toBeGreaterThanOrEqual(0);
        expect(range.end).toBeGreaterThanOrEqual(range.start);
        expect(range.end).toBeLessThan(size);
        if (ifRange === '"other"') throw new Error('an If-Range that does not match must give the whole file');
      }),
      { numRuns: 5000 },
    );
  });

  it('serves exactly the bytes a valid single range names', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 40 }).chain((size) => fc.tuple(fc.constant(size), fc.nat({ max: size - 1 }), fc.nat({ max: size - 1 }))), ([size, a, b]) => {
        const [start, end] = a <= b ? [a, b] : [b, a];
        expect(requestedRange(size, `bytes=${start}-${end}`, undefined, '"e"')).toEqual({ start, end });
        expect(requestedRange(size, `bytes=${start}-`, undefined, '"e"')).toEqual({ start, end: size - 1 });
        expect(requestedRange(size, `bytes=-${end - start + 1}`, undefined, '"e"')).toEqual({ start: size - (end - start + 1), end: size - 1 });
      }),
    );
  });
});
