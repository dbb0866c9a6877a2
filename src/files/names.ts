import { randomBytes } from 'node:crypto';
import { create as createContentDisposition } from 'content-disposition';

/** Longest display name (`name`), in characters. */
export const MAX_NAME_LENGTH = 200;
/** Longest `originalName`: 255, more than any file system allows a file name, so a real name is never cut. */
export const MAX_ORIGINAL_NAME_LENGTH = 255;
/** An extension this long or shorter (with its dot) survives a cut. */
const MAX_KEPT_EXTENSION = 16;

/** Unicode's bidi controls: embeddings and overrides, isolates, the LRM/RLM and Arabic letter marks. */
const BIDI_CONTROLS = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu;

/**
 * A display name safe to show and to put in Content-Disposition: no directory part (either
 * separator), no control or format characters (NUL, CR, LF, bidi overrides...), no lone surrogates
 * (they would make the header unencodable), no leading dots, at most 200 characters with a short
 * extension kept. It is never used as a filesystem path; store keys come from `newFileId`.
 */
export function sanitizeFilename(original: string): string {
  const base = wellFormed(original).split(/[/\\]/).pop() ?? '';
  const name = base
    .normalize('NFC')
    // \p{Cc}: NUL and C0/C1 controls; \p{Cf}: invisible format chars such as bidi overrides.
    .replace(/[\p{Cc}\p{Cf}]/gu, '')
    .replace(/[<>:"|?*]/g, '_')
    .replace(/\s+/g, ' ')
    .replace(/^[. ]+/, '')
    .replace(/[. ]+$/, '');
  return capKeepingExtension(name, MAX_NAME_LENGTH) || 'file';
}

/**
 * The name as the client sent it, for `originalName`, less what no file name needs and what can
 * deceive or break a reader: ASCII and C1 control characters (NUL, CR, LF...), bidi controls, and
 * lone surrogates (replaced by U+FFFD). At most 255 characters, the extension kept.
 */
export function cleanOriginalName(original: string): string {
  const cleaned = wellFormed(original).replace(/\p{Cc}/gu, '').replace(BIDI_CONTROLS, '');
  return capKeepingExtension(cleaned, MAX_ORIGINAL_NAME_LENGTH);
}

/** What NFKD leaves whole (no accent to drop), spelled as people write it in ASCII. */
const ASCII_SPELLINGS: Record<string, string> = {
  ß: 'ss', ẞ: 'SS', æ: 'ae', Æ: 'AE', œ: 'oe', Œ: 'OE', ø: 'o', Ø: 'O', ł: 'l', Ł: 'L',
  đ: 'd', Đ: 'D', ð: 'd', Ð: 'D', þ: 'th', Þ: 'Th', ı: 'i', ħ: 'h', Ħ: 'H', ŋ: 'ng', Ŋ: 'NG',
  '‐': '-', '‑': '-', '‒': '-', '–': '-', '—': '-', '―': '-', '−': '-',
  '‘': "'", '’': "'", '‚': "'", '‛': "'", '“': "'", '”': "'", '„': "'", '«': "'", '»': "'", '‹': "'", '›': "'",
  '€': 'EUR', '×': 'x',
};

/**
 * A readable US-ASCII spelling of a name, for Content-Disposition's plain `filename`: clients that
 * don't read `filename*` (`curl -OJ`) save under it. Accents dropped (NFKD, then no combining
 * marks), common letters spelled out (ß -> ss, ø -> o), any other run of characters one `_`;
 * never a quote, backslash or control character. A name with no letter or digit left is `file`.
 */
export function asciiFilename(name: string): string {
  const ascii = [...wellFormed(name).normalize('NFKD').replace(/\p{M}/gu, '')]
    .map((c) => ASCII_SPELLINGS[c] ?? c)
    .join('')
    .replace(/[\p{Cc}\p{Cf}]/gu, '')
    .replace(/["\\]/g, '_')
    .replace(/[^\x20-\x7e]+/g, '_')
    .replace(/\s+/g, ' ')
    .trim();
  const dot = ascii.lastIndexOf('.');
  const [stem, ext] = dot > 0 ? [ascii.slice(0, dot), ascii.slice(dot)] : [ascii, ''];
  if (/[A-Za-z0-9]/.test(stem)) return ascii;
  return `file${/[A-Za-z0-9]/.test(ext) ? ext : ''}`;
}

/**
 * Content-Disposition for a download of `name`: `filename*` carries the name as it is (UTF-8),
 * `filename` its ASCII spelling for clients that read only that.
 */
export function contentDisposition(name: string, type: 'attachment' | 'inline'): string {
  const fallback = asciiFilename(name);
  // An ASCII name is its own fallback: the package adds `filename*` only if `filename` can't carry it.
  return createContentDisposition(name, { type, fallback: fallback === name ? true : fallback });
}

/** Lone surrogates (possible in JSON strings, not in UTF-8) replaced by U+FFFD. */
function wellFormed(text: string): string {
  return text.replace(/\p{Cs}/gu, '\ufffd');
}

/** At most `max` characters (code points); a short extension is kept, and the cut part loses trailing dots and spaces. */
function capKeepingExtension(name: string, max: number): string {
  const chars = [...name];
  if (chars.length <= max) return name;
  const dot = name.lastIndexOf('.');
  const ext = dot > 0 && name.length - dot <= MAX_KEPT_EXTENSION ? [...name.slice(dot)] : [];
  const stem = chars.slice(0, max - ext.length).join('').replace(/[. ]+$/, '');
  return stem + ext.join('');
}

/** 128 random bits, lowercase hex: unguessable, URL-safe, and safe on case-insensitive disks. */
export function newFileId(): string {
  return randomBytes(16).toString('hex');
}

/** Store key for a file id, sharded by its first two characters to keep directories small. */
export function storeKeyFor(id: string): string {
  return `${id.slice(0, 2)}/${id}`;
}
