import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import * as XLSX from 'xlsx';
import { SourceRejected } from '../../src/errors';
import { RowSpool } from '../../src/reports/row-spool';
import type { Column, Row } from '../../src/reports/spec';
import { bigCsv, inlineStringBomb, sharedStringsBomb, toFile } from '../helpers/hostile';
import { ROOT } from '../helpers/service';
import { makeTempDir } from '../helpers/tmp';
import { readSource } from './helpers';
import type { SourceLimits } from '../../src/reports/source-table';
import { writeXlsx } from '../../src/reports/xlsx';
import { zipStream, type ZipEntry } from '../../src/reports/zip';
import { readAll } from '../helpers/streams';

const text = (s: string | Buffer) => Readable.from([Buffer.from(s)]);

async function rejection(input: Readable, limits?: Partial<SourceLimits>, sheet?: string): Promise<string> {
  const err = await readSource(input, { limits, sheet }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SourceRejected);
  expect((err as SourceRejected).status).toBe(422);
  expect((err as SourceRejected).code).toBe('source_rejected');
  return (err as Error).message;
}

async function zipOf(entries: ZipEntry[]): Promise<Buffer> {
  return readAll(Readable.from(zipStream(entries)));
}

/** A minimal workbook around `sheetXml`, optionally with extra parts. */
function workbookParts(sheetXml: Buffer | string, extra: ZipEntry[] = []): ZipEntry[] {
  const b = (s: string) => Buffer.from(s);
  return [
    { name: 'xl/workbook.xml', data: b('<workbook xmlns:r="r"><sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>') },
    { name: 'xl/_rels/workbook.xml.rels', data: b('<Relationships><Relationship Id="rId1" Target="worksheets/sheet1.xml"/></Relationships>') },
    { name: 'xl/worksheets/sheet1.xml', data: Buffer.isBuffer(sheetXml) ? sheetXml : b(sheetXml) },
    ...extra,
  ];
}

describe('readSource: CSV', () => {
  it('reads typed columns and rows, and logs blank and ragged lines', async () => {
    const csv = '\uFEFFid;name;amount;day;ok;code\r\n1;Zoë;1.5;2024-01-31;true;007\r\n\r\n2;"Ødegård; ""Ø""";-2;2024-02-01T10:00:00Z;false;010\r\n3;short\r\n;;;;;\r\n';
    const table = await readSource(text(csv));
    expect(table.columns).toEqual([
      { key: 'c1', header: 'id', type: 'integer' },
      { key: 'c2', header: 'name', type: 'string' },
      { key: 'c3', header: 'amount', type: 'number' },
      { key: 'c4', header: 'day', type: 'date' },
      { key: 'c5', header: 'ok', type: 'boolean' },
      { key: 'c6', header: 'code', type: 'string' },
    ]);
    expect(table.rows).toEqual([
      { c1: '1', c2: 'Zoë', c3: '1.5', c4: '2024-01-31', c5: 'true', c6: '007' },
      { c1: '2', c2: 'Ødegård; "Ø"', c3: '-2', c4: '2024-02-01T10:00:00Z', c5: 'false', c6: '010' },
    ]);
    expect(table.log).toEqual({
      format: 'csv',
      rowsRead: 2,
      rowsSkipped: 3,
      skipped: [
        { row: 3, reason: 'blank row' },
        { row: 5, reason: 'has 2 fields, expected 6' },
        { row: 6, reason: 'blank row' },
      ],
    });
  });

  it('names blank and repeated headers and reads commas by default', async () => {
    const table = await readSource(text('a,,a\n1,2,3\n'));
    expect(table.columns.map((c) => c.header)).toEqual(['a', 'Column 2', 'a (2)']);
    expect(table.rows).toEqual([{ c1: '1', c2: '2', c3: '3' }]);
  });

  it('rejects broken quoting with the line it is on', async () => {
    expect(await rejection(text('a,b\n1,"unclosed\n2,3\n'))).toMatch(/^The CSV could not be read: Quote Not Closed.*line 3/);
    expect(await rejection(text('a,b\n1,"x"y\n'))).toMatch(/^The CSV could not be read: .*line 2/);
  });

  it('rejects what is not UTF-8 CSV text', async () => {
    expect(await rejection(text(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13])))).toBe('The file is neither a CSV text file nor an xlsx workbook.');
    expect(await rejection(text(Buffer.from('name\nJos\xe9\n', 'latin1')))).toContain('not UTF-8 text');
    expect(await rejection(text(Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1])))).toContain('old Excel (.xls)');
    expect(await rejection(text(''))).toBe('The file is empty.');
    expect(await rejection(text('\n\n \n'))).toBe('The CSV has no header line.');
  });

  it('enforces the size, row and column limits while reading', async () => {
    const big = 'a,b\n' + '1,2\n'.repeat(10_000);
    expect(await rejection(Readable.from([Buffer.from(big.slice(0, 20_000)), Buffer.from(big.slice(20_000))]), { maxBytes: 30_000 })).toContain('larger than the 30000 bytes');
    expect(await rejection(text(big), { maxRows: 9_999 })).toContain('more than 9999 rows');
    expect(await rejection(text('a,b,c\n'), { maxColumns: 2 })).toContain('3 columns; at most 2');
    expect(await rejection(text(big), { maxCells: 2 * 5_000 })).toBe('The CSV has more than 10000 cells (rows x columns), the most a report can read.');
    expect(await rejection(text(`a\n"${'x'.repeat(2 * 1024 * 1024)}"\n`))).toContain('The CSV could not be read');
  });
});

describe('readSource: XLSX', () => {
  const columns: Column[] = [
    { key: 'name', header: 'Name', type: 'string' },
    { key: 'qty', header: 'Qty', type: 'integer' },
    { key: 'price', header: 'Price', type: 'currency' },
    { key: 'when', header: 'When', type: 'date' },
    { key: 'ok', header: 'OK', type: 'boolean' },
  ];

  it('reads back a workbook written by writeXlsx (inline strings, date styles)', async () => {
    const chunks: Buffer[] = [];
    const { Writable } = await import('node:stream');
    const out = new Writable({ write: (c, _e, cb) => (chunks.push(c as Buffer), cb()) });
    const rows = [
      { name: 'Ελένη', qty: 2, price: 9.5, when: '2024-01-31', ok: true },
      { name: 'Дмитрий', qty: 3, price: 0.25, when: '2024-02-29T13:45:30Z', ok: false },
    ];
    await writeXlsx({ title: 'T', columns, rows, options: { totalsRow: true } }, out);
    const table = await readSource(Readable.from(chunks));
    expect(table.columns.map((c) => [c.header, c.type])).toEqual([['Name', 'string'], ['Qty', 'integer'], ['Price', 'number'], ['When', 'date'], ['OK', 'boolean']]);
    expect(table.rows).toEqual([
      { c1: 'Ελένη', c2: 2, c3: 9.5, c4: new Date('2024-01-31T00:00:00Z'), c5: true },
      { c1: 'Дмитрий', c2: 3, c3: 0.25, c4: new Date('2024-02-29T13:45:30Z'), c5: false },
      { c1: 'Total', c2: 5, c3: 9.75 },
    ]);
    expect(table.log).toEqual({ format: 'xlsx', sheet: 'T', rowsRead: 3, rowsSkipped: 0, skipped: [] });
  });

  it('reads a SheetJS workbook (shared strings, built-in date format), picks a sheet by name, logs blank rows', async () => {
    const wb = XLSX.utils.book_new();
    XLSX.utils.book_append_sheet(wb, XLSX.utils.aoa_to_sheet([['ignored']]), 'First');
    const data = [['Who', 'Born', 'Score'], ['Łukasz', new Date(Date.UTC(1990, 4, 17)), 3.5], [], ['Zoë', new Date(Date.UTC(2001, 0, 2)), 4], ['x', null, null, 'extra']];
    XLSX.utils.book_append_sheet(wb, XLSX.utils.aoa_to_sheet(data, { cellDates: true }), 'People');
    const buf = XLSX.write(wb, { type: 'buffer', bookType: 'xlsx', bookSST: true, cellDates: false }) as Buffer;
    const table = await readSource(text(buf), { sheet: 'People' });
    expect(table.columns.map((c) => [c.header, c.type])).toEqual([['Who', 'string'], ['Born', 'date'], ['Score', 'number']]);
    expect(table.rows).toEqual([
      { c1: 'Łukasz', c2: new Date(Date.UTC(1990, 4, 17)), c3: 3.5 },
      { c1: 'Zoë', c2: new Date(Date.UTC(2001, 0, 2)), c3: 4 },
    ]);
    expect(table.log).toMatchObject({ sheet: 'People', rowsRead: 2, rowsSkipped: 2, skipped: [{ row: 3, reason: 'blank row' }, { row: 5, reason: "has values beyond the header's 3 columns" }] });
    expect(await rejection(text(buf), {}, 'Nope')).toBe('The workbook has no sheet named "Nope" (it has "First", "People").');
  });

  it('rejects a zip that is not a workbook, and a corrupt zip', async () => {
    expect(await rejection(text(await zipOf([{ name: 'readme.txt', data: Buffer.from('hi') }])))).toContain('not an xlsx workbook');
    const good = await zipOf(workbookParts('<worksheet><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>a</t></is></c></row></sheetData></worksheet>'));
    expect((await readSource(text(good))).columns[0].header).toBe('a');
    expect(await rejection(text(good.subarray(0, good.length - 30)))).toMatch(/^The xlsx file is damaged \(not a readable zip archive/);
    const flipped = Buffer.from(good);
    flipped[60] ^= 0xff; // inside the first entry's deflated data
    expect(await rejection(text(flipped))).toMatch(/^The xlsx file is damaged/);
    expect(await rejection(text(Buffer.concat([Buffer.from('PK\x03\x04'), Buffer.alloc(100, 7)])))).toMatch(/^The xlsx file is damaged/);
  });

  it('rejects malformed XML, entity tricks and bad shared-string references', async () => {
    expect(await rejection(text(await zipOf(workbookParts('<worksheet><sheetData><row r="1"><c r="A1"><v>1</v></row></worksheet>'))))).toMatch(/^The xlsx file is damaged \(xl\/worksheets\/sheet1.xml: /);
    const xxe = '<?xml version="1.0"?><!DOCTYPE w [<!ENTITY x SYSTEM "file:///etc/passwd">]><worksheet><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>&x;</t></is></c></row></sheetData></worksheet>';
    expect(await rejection(text(await zipOf(workbookParts(xxe))))).toMatch(/damaged.*undefined entity/i);
    expect(await rejection(text(await zipOf(workbookParts('<worksheet><sheetData><row r="1"><c r="A1" t="s"><v>5</v></c></row></sheetData></worksheet>'))))).toContain('shared string 5, which does not exist');
  });

  it('refuses a zip bomb by its declared size before inflating it', async () => {
    const bomb = Buffer.concat([Buffer.from('<worksheet><sheetData>'), Buffer.alloc(50 * 1024 * 1024, 0x20), Buffer.from('</sheetData></worksheet>')]);
    const zip = await zipOf(workbookParts(bomb));
    expect(zip.length).toBeLessThan(1024 * 1024);
    expect(await rejection(text(zip), { maxDecompressedBytes: 10 * 1024 * 1024 })).toBe(
      'The xlsx file decompresses to more than the 10485760 bytes allowed (REPORT_SOURCE_MAX_DECOMPRESSED_BYTES); it may be a zip bomb.',
    );
  });

  it('stops inflating a part once the decompressed total passes the cap', async () => {
    // The workbook part is not counted up front, so this one is caught while it streams. Markup
    // all the way (blank text this long would be refused sooner, by the cell cap).
    const parts = workbookParts('<worksheet/>');
    const filler = Buffer.from('<a/>'.repeat(1024 * 1024));
    parts[0] = { name: 'xl/workbook.xml', data: Readable.from([Buffer.from('<workbook>'), ...Array(8).fill(filler), Buffer.from('</workbook>')]) as AsyncIterable<Buffer> };
    const zip = await zipOf(parts);
    expect(await rejection(text(zip), { maxDecompressedBytes: 4 * 1024 * 1024 })).toContain('it may be a zip bomb');
  });

  it('refuses a zip bomb that lies about its size', async () => {
    const payload = Buffer.alloc(40 * 1024 * 1024, 0x20);
    const zip = await zipOf(workbookParts(Buffer.concat([Buffer.from('<worksheet><sheetData>'), payload, Buffer.from('</sheetData></worksheet>')])));
    // Patch the sheet's declared size (local header and central directory) down to 100 bytes.
    const name = Buffer.from('xl/worksheets/sheet1.xml');
    for (let at = zip.indexOf(name); at >= 0; at = zip.indexOf(name, at + 1)) {
      if (zip.readUInt32LE(at - 30) === 0x04034b50) zip.writeUInt32LE(100, at - 30 + 22);
      if (zip.readUInt32LE(at - 46) === 0x02014b50) zip.writeUInt32LE(100, at - 46 + 24);
    }
    expect(await rejection(text(zip), { maxDecompressedBytes: 10 * 1024 * 1024 })).toMatch(/^The xlsx file is damaged.*too many bytes|zip bomb/);
  });

  it('enforces the row and column limits while reading the sheet', async () => {
    const rows = Array.from({ length: 20 }, (_, i) => `<row r="${i + 1}"><c r="A${i + 1}"><v>${i}</v></c></row>`).join('');
    const zip = await zipOf(workbookParts(`<worksheet><sheetData>${rows}</sheetData></worksheet>`));
    expect(await rejection(text(zip), { maxRows: 10 })).toBe('The sheet has more than 10 rows, the most a report can read (REPORT_SOURCE_MAX_ROWS).');
    const wide = await zipOf(workbookParts('<worksheet><sheetData><row r="1"><c r="XFD1"><v>1</v></c></row></sheetData></worksheet>'));
    expect(await rejection(text(wide))).toBe('The sheet uses more than 200 columns; at most 200 are allowed.');
    expect(await rejection(text(await zipOf(workbookParts('<worksheet><sheetData/></worksheet>'))))).toBe('Sheet "S" is empty.');
  });
});

const DIST_REPORTS = path.join(ROOT, 'dist', 'src', 'reports');

type ThreadRead = { rows: number; columns: string[] } | { rejected: string } | { error: string; code?: string };

/**
 * Reads `file` as a report thread does, in a worker thread whose heap is capped at `heapMb`: a
 * read that keeps what it reads (rows, a giant string) runs out of it. The thread runs the
 * compiled reader in dist/ (jest's global setup builds it).
 */
function readInThread(file: string, heapMb: number, limits: Partial<SourceLimits> = {}): Promise<ThreadRead> {
  const script = `
    const { parentPort, workerData } = require('node:worker_threads');
    const { readSourceFile } = require(workerData.dist + '/source.js');
    (async () => {
      try {
        const table = await readSourceFile(workerData.file, { limits: workerData.limits, tempDir: workerData.tempDir });
        let rows = 0;
        for await (const row of table.rows) rows++;
        await table.dispose();
        parentPort.postMessage({ rows, columns: table.columns.map((c) => c.type) });
      } catch (err) {
        parentPort.postMessage(err.code === 'source_rejected' ? { rejected: err.message } : { error: err.message });
      }
    })();`;
  return new Promise((resolve) => {
    const thread = new Worker(script, {
      eval: true,
      workerData: { dist: DIST_REPORTS, file, limits, tempDir: path.dirname(file) },
      resourceLimits: { maxOldGenerationSizeMb: heapMb },
    });
    thread.once('message', (m: ThreadRead) => {
      resolve(m);
      void thread.terminate();
    });
    thread.once('error', (err: Error & { code?: string }) => resolve({ error: err.message, code: err.code }));
  });
}

async function withFile<T>(source: AsyncIterable<Buffer>, use: (file: string, size: number) => Promise<T>): Promise<T> {
  const dir = await makeTempDir('stowage-hostile-');
  try {
    const file = path.join(dir, 'source');
    return await use(file, await toFile(source, file));
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

describe('readSource: hostile sources are refused by what they produce, in bounded memory', () => {
  const MiB = 1024 * 1024;

  it('refuses an inline string of 96 MiB (from a zip of about 100 KB) by REPORT_SOURCE_MAX_CELL_BYTES, in a 16 MB heap', async () => {
    // Default limits: 96 MiB is well under REPORT_SOURCE_MAX_DECOMPRESSED_BYTES (500 MiB).
    const result = await withFile(inlineStringBomb(96 * MiB), async (file, size) => {
      expect(size).toBeLessThan(200 * 1024);
      return readInThread(file, 16);
    });
    expect(result).toEqual({ rejected: expect.stringMatching(/^The xlsx file has more than \d+ characters of text without markup in xl\/worksheets\/sheet1.xml.*REPORT_SOURCE_MAX_CELL_BYTES/) });
  });

  it('refuses a shared-strings table past REPORT_SOURCE_MAX_SHARED_STRINGS_BYTES while it inflates, in a 16 MB heap', async () => {
    const result = await withFile(sharedStringsBomb(96 * MiB), (file) => readInThread(file, 16, { maxSharedStringsBytes: 8 * MiB }));
    expect(result).toEqual({
      rejected: "The xlsx file's shared strings take more than the 8388608 bytes allowed (REPORT_SOURCE_MAX_SHARED_STRINGS_BYTES); it may be a zip bomb.",
    });
  });

  it('counts 12 bytes for each shared string besides its text, so a million empty ones are refused too', async () => {
    const sst = Buffer.from(`<sst>${'<si><t/></si>'.repeat(1_000_000)}</sst>`);
    const zip = await zipOf(workbookParts('<worksheet><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c></row></sheetData></worksheet>', [{ name: 'xl/sharedStrings.xml', data: sst }]));
    expect(await rejection(text(zip), { maxSharedStringsBytes: 8 * MiB })).toContain('REPORT_SOURCE_MAX_SHARED_STRINGS_BYTES');
    // Under the cap, every entry reads back by its index.
    const ok = await zipOf(
      workbookParts('<worksheet><sheetData><row r="1"><c r="A1" t="s"><v>2</v></c></row><row r="2"><c r="A2" t="s"><v>1</v></c></row></sheetData></worksheet>', [
        { name: 'xl/sharedStrings.xml', data: Buffer.from('<sst><si><t>zero</t></si><si><r><t>Ø</t></r><r><t>ne</t></r></si><si><t>Ελένη</t></si></sst>') },
      ]),
    );
    const table = await readSource(text(ok));
    expect(table.columns[0].header).toBe('Ελένη');
    expect(table.rows).toEqual([{ c1: 'Øne' }]);
  });

  it('holds one cell to REPORT_SOURCE_MAX_CELL_BYTES of UTF-8, however its text arrives', async () => {
    const cell = (inner: string) => `<worksheet><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>h</t></is></c></row><row r="2"><c r="A2" t="inlineStr"><is>${inner}</is></c></row></sheetData></worksheet>`;
    const limits = { maxCellBytes: 1000 };
    // 500 two-byte characters are exactly 1000 bytes: allowed; one more is not.
    expect((await readSource(text(await zipOf(workbookParts(cell(`<t>${'é'.repeat(500)}</t>`)))), { limits })).rows).toEqual([{ c1: 'é'.repeat(500) }]);
    expect(await rejection(text(await zipOf(workbookParts(cell(`<t>${'é'.repeat(501)}</t>`)))), limits)).toBe(
      'A cell (row 2, column 1) holds more than 1000 bytes of text, the most a report reads from one cell (REPORT_SOURCE_MAX_CELL_BYTES); Excel itself keeps at most 32,767 characters in a cell.',
    );
    // Rich-text runs and CDATA add up.
    const runs = `<r><t>${'x'.repeat(600)}</t></r><r><t><![CDATA[${'y'.repeat(600)}]]></t></r>`;
    expect(await rejection(text(await zipOf(workbookParts(cell(runs)))), limits)).toContain('(row 2, column 1) holds more than 1000 bytes');
    // A shared string is a cell's text too.
    const shared = await zipOf(workbookParts(cell('<t>x</t>'), [{ name: 'xl/sharedStrings.xml', data: Buffer.from(`<sst><si><t>${'z'.repeat(1001)}</t></si></sst>`) }]));
    expect(await rejection(text(shared), limits)).toContain('A cell (shared string 0) holds more than 1000 bytes');
  });

  it('refuses a comment, attribute or blank run far longer than any cell, before the XML parser has buffered it', async () => {
    const long = 'c'.repeat(8 * MiB);
    for (const sheet of [
      `<worksheet><!--${long}--><sheetData/></worksheet>`,
      `<worksheet><sheetData><row r="1"><c r="A1" x="${long}"><v>1</v></c></row></sheetData></worksheet>`,
      `<worksheet><sheetData>${' '.repeat(8 * MiB)}</sheetData></worksheet>`,
    ]) {
      expect(await rejection(text(await zipOf(workbookParts(sheet))))).toMatch(/^The xlsx file has more than \d+ characters of text without markup in xl\/worksheets\/sheet1.xml.*REPORT_SOURCE_MAX_CELL_BYTES/);
    }
  });

  it('refuses XML nested or attributed far beyond any workbook, before the parser holds it', async () => {
    const deep = `<worksheet><sheetData>${'<a>'.repeat(1_000_000)}</sheetData></worksheet>`;
    expect(await rejection(text(await zipOf(workbookParts(deep))))).toBe(
      "The xlsx file's XML has elements nested more than 100 deep (in xl/worksheets/sheet1.xml); it is not an ordinary workbook.",
    );
    const wide = `<worksheet><sheetData><row ${Array.from({ length: 200_000 }, (_, i) => `a${i}="1"`).join(' ')}/></sheetData></worksheet>`;
    expect(await rejection(text(await zipOf(workbookParts(wide))))).toBe(
      "The xlsx file's XML has an element with more than 1000 attributes (in xl/worksheets/sheet1.xml); it is not an ordinary workbook.",
    );
  });

  it('holds a CSV field to REPORT_SOURCE_MAX_CELL_BYTES', async () => {
    expect(await rejection(text(`a,b\n1,${'x'.repeat(1001)}\n`), { maxCellBytes: 1000 })).toBe(
      'A cell (line 2, column 2) holds more than 1000 bytes of text, the most a report reads from one cell (REPORT_SOURCE_MAX_CELL_BYTES); Excel itself keeps at most 32,767 characters in a cell.',
    );
  });

  it('reads a 16 MiB CSV in a 16 MB heap: its rows go to a spool and stream back one by one', async () => {
    // Held in memory, as they were, these 160,000 rows took about 100 MB.
    const result = await withFile(bigCsv(16 * MiB), (file) => readInThread(file, 16));
    expect(result).toEqual({ rows: expect.any(Number), columns: ['integer', 'string', 'number', 'date', 'string'] });
    expect((result as { rows: number }).rows).toBeGreaterThan(150_000);
  });

  it('spools rows with their types: dates come back as dates, blanks stay blank', async () => {
    const dir = await makeTempDir('stowage-spool-types-');
    try {
      const spool = await RowSpool.create(dir);
      await spool.write(['a', 1.5, true, new Date(Date.UTC(2024, 1, 29, 13, 45)), undefined, null, '']);
      await spool.finish();
      const rows: Row[] = [];
      for await (const row of spool.rows(7)) rows.push(row);
      expect(rows).toEqual([{ c1: 'a', c2: 1.5, c3: true, c4: new Date(Date.UTC(2024, 1, 29, 13, 45)), c7: '' }]);
      await spool.dispose();
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});
