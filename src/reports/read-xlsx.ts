import path from 'node:path';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import zlib from 'node:zlib';
import { SaxesParser, type SaxesTagPlain } from 'saxes';
import yauzl from 'yauzl';
import { SourceRejected } from '../errors';
import { ColumnTypes } from './columns';
import type { Column } from './spec';
import type { RowSpool } from './row-spool';
import { SharedStrings } from './shared-strings';
import { checkCell, checkRoom, logSkip, type ProcessingLog, type SourceLimits } from './source-table';
import { asText, toDate } from './values';

/** A real workbook has a few dozen parts; thousands of entries is a zip made to waste time. */
const MAX_ENTRIES = 10_000;
const EXCEL_MAX_ROW = 1_048_576;
/** Days from Excel's epoch (1899-12-30) to the Unix one. */
const UNIX_EPOCH_SERIAL = 25569;
/** Built-in number formats that are dates or times (ECMA-376 18.8.30, plus the CJK ones). */
const BUILTIN_DATE_FORMATS = new Set([14, 15, 16, 17, 18, 19, 20, 21, 22, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 45, 46, 47, 50, 51, 52, 53, 54, 55, 56, 57, 58]);
/** Characters handed to the XML parser at a time, so the run guard below checks often. */
const SLICE = 64 * 1024;
/** Far beyond any workbook part's XML, far below what would cost memory to hold. */
const MAX_DEPTH = 100;
const MAX_ATTRIBUTES = 1000;

interface Zip {
  file: yauzl.ZipFile;
  entries: Map<string, yauzl.Entry>;
}

const damaged = (detail: string) => new SourceRejected(`The xlsx file is damaged (${detail}). Open and save it again in a spreadsheet app, or upload it as CSV.`);

function openZip(file: string): Promise<Zip> {
  return new Promise((resolve, reject) => {
    yauzl.open(file, { lazyEntries: true, autoClose: false, validateEntrySizes: true }, (err, zip) => {
      if (err || !zip) return reject(damaged(`not a readable zip archive: ${err?.message ?? 'unknown error'}`));
      const entries = new Map<string, yauzl.Entry>();
      zip.on('entry', (entry: yauzl.Entry) => {
        entries.set(entry.fileName, entry);
        if (entries.size > MAX_ENTRIES) {
          zip.close();
          return reject(new SourceRejected(`The xlsx file holds more than ${MAX_ENTRIES} parts; it is not an ordinary workbook.`));
        }
        zip.readEntry();
      });
      zip.on('end', () => resolve({ file: zip, entries }));
      zip.on('error', (e: Error) => reject(damaged(e.message)));
      zip.readEntry();
    });
  });
}

function openEntry(zip: Zip, entry: yauzl.Entry): Promise<Readable> {
  return new Promise((resolve, reject) => {
    zip.file.openReadStream(entry, (err, stream) => (err || !stream ? reject(damaged(`${entry.fileName}: ${err?.message}`)) : resolve(stream)));
  });
}

/** Counts every decompressed byte read from the archive; past the cap the file is refused. */
class Budget {
  private used = 0;
  constructor(private readonly max: number) {}

  take(bytes: number): void {
    this.used += bytes;
    if (this.used > this.max) throw this.refusal();
  }

  refusal(): SourceRejected {
    return new SourceRejected(`The xlsx file decompresses to more than the ${this.max} bytes allowed (REPORT_SOURCE_MAX_DECOMPRESSED_BYTES); it may be a zip bomb.`);
  }
}

/** Tag name without its namespace prefix: some writers use `x:row`. */
function local(name: string): string {
  const colon = name.indexOf(':');
  return colon < 0 ? name : name.slice(colon + 1);
}

/**
 * The most characters the XML parser may take in without reaching a piece of markup that ends
 * what it is buffering. saxes keeps a text node, an attribute value, a comment, a CDATA section
 * or a name whole in one string until its end (and concatenates across writes), so without this a
 * sheet holding one 452 MiB string would build that string, however the cells are capped after.
 * Six characters per byte of the longest cell allowed leaves room for any cell written with
 * escapes (`&quot;` is six characters for one byte); no real workbook part comes near it.
 */
export function maxMarkupRun(limits: SourceLimits): number {
  return 6 * limits.maxCellBytes + SLICE;
}

/** What a part's reader listens to; CDATA is text too. */
interface Listeners {
  opentag?: (tag: SaxesTagPlain) => void;
  text?: (text: string) => void;
  closetag?: (tag: SaxesTagPlain) => void;
  /** Called between chunks (parser events are synchronous): where the reader may wait. */
  drain?: () => Promise<void>;
}

/**
 * Streams one part through a SAX parser; false when the archive has no such part. Every
 * decompressed byte counts against the budget, and what the parser buffers between two events is
 * capped (maxMarkupRun).
 */
async function parsePart(zip: Zip, name: string, budget: Budget, limits: SourceLimits, listeners: Listeners): Promise<boolean> {
  const entry = zip.entries.get(name);
  if (!entry) return false;
  const stream = await openEntry(zip, entry);
  // No DTD support and no external entities in saxes: XXE and entity expansion cannot happen.
  const parser = new SaxesParser();
  // Characters given to the parser since its last event (at most one slice short).
  let run = 0;
  const seen = () => {
    run = 0;
  };
  // saxes also keeps every open element and every attribute of the element it is reading: a
  // workbook nests a dozen deep and has a few dozen attributes on an element at most.
  let depth = 0;
  let attributes = 0;
  const unusual = (what: string) => new SourceRejected(`The xlsx file's XML has ${what} (in ${name}); it is not an ordinary workbook.`);
  const { opentag, text, closetag } = listeners;
  parser.on('opentagstart', () => {
    seen();
    attributes = 0;
  });
  parser.on('attribute', () => {
    seen();
    if (++attributes > MAX_ATTRIBUTES) throw unusual(`an element with more than ${MAX_ATTRIBUTES} attributes`);
  });
  parser.on('opentag', (tag) => {
    seen();
    if (++depth > MAX_DEPTH) throw unusual(`elements nested more than ${MAX_DEPTH} deep`);
    opentag?.(tag as SaxesTagPlain);
  });
  parser.on('closetag', (tag) => {
    seen();
    depth--;
    closetag?.(tag as SaxesTagPlain);
  });
  // Without a text listener saxes skips text rather than buffering it; the run still counts it.
  if (text) {
    parser.on('text', (t) => (seen(), text(t)));
    parser.on('cdata', (t) => (seen(), text(t)));
  } else {
    parser.on('cdata', seen);
  }
  parser.on('comment', seen);
  parser.on('processinginstruction', seen);
  parser.on('doctype', seen);
  parser.on('xmldecl', seen);
  const maxRun = maxMarkupRun(limits);
  const feed = (chars: string) => {
    for (let at = 0; at < chars.length; at += SLICE) {
      const slice = at === 0 && chars.length <= SLICE ? chars : chars.slice(at, at + SLICE);
      run += slice.length;
      parser.write(slice);
      if (run > maxRun) {
        throw new SourceRejected(
          `The xlsx file has more than ${maxRun} characters of text without markup in ${name}: a cell, attribute or comment longer than any cell of ${limits.maxCellBytes} bytes (REPORT_SOURCE_MAX_CELL_BYTES) can be.`,
        );
      }
    }
  };
  const decoder = new StringDecoder('utf8');
  // yauzl checks sizes but not CRC-32; a damaged part must not pass for data.
  let crc = 0;
  try {
    for await (const chunk of stream) {
      budget.take((chunk as Buffer).length);
      crc = zlib.crc32(chunk as Buffer, crc);
      feed(decoder.write(chunk as Buffer));
      await listeners.drain?.();
    }
    feed(decoder.end());
    parser.close();
    await listeners.drain?.();
    if (crc !== entry.crc32) throw damaged(`${name}: checksum mismatch`);
    return true;
  } catch (err) {
    stream.destroy();
    if (err instanceof SourceRejected) throw err;
    throw damaged(`${name}: ${(err as Error).message}`);
  }
}

interface SheetRef {
  name: string;
  part: string;
}

async function readSheetList(zip: Zip, budget: Budget, limits: SourceLimits): Promise<SheetRef[]> {
  const sheets: Array<{ name: string; rid: string }> = [];
  const found = await parsePart(zip, 'xl/workbook.xml', budget, limits, {
    opentag: (tag) => {
      if (local(tag.name) !== 'sheet') return;
      if (sheets.length >= MAX_ENTRIES) throw new SourceRejected(`The workbook lists more than ${MAX_ENTRIES} sheets; it is not an ordinary workbook.`);
      const rid = Object.entries(tag.attributes).find(([k]) => k === 'id' || k.endsWith(':id'))?.[1];
      sheets.push({ name: String(tag.attributes.name ?? ''), rid: String(rid ?? '') });
    },
  });
  if (!found) throw new SourceRejected('The zip file is not an xlsx workbook (it has no xl/workbook.xml).');
  const targets = new Map<string, string>();
  await parsePart(zip, 'xl/_rels/workbook.xml.rels', budget, limits, {
    opentag: (tag) => {
      if (local(tag.name) !== 'Relationship') return;
      if (targets.size >= MAX_ENTRIES) throw new SourceRejected(`The workbook has more than ${MAX_ENTRIES} relationships; it is not an ordinary workbook.`);
      targets.set(String(tag.attributes.Id), String(tag.attributes.Target));
    },
  });
  return sheets.map(({ name, rid }) => {
    const target = targets.get(rid) ?? '';
    return { name, part: target.startsWith('/') ? target.slice(1) : path.posix.join('xl', target) };
  });
}

/** The shared-strings table, each entry checked as a cell and the whole capped (shared-strings.ts). */
async function readSharedStrings(zip: Zip, budget: Budget, limits: SourceLimits): Promise<SharedStrings> {
  const strings = new SharedStrings(limits.maxSharedStringsBytes);
  let current = '';
  let inText = false;
  let phonetic = 0;
  await parsePart(zip, 'xl/sharedStrings.xml', budget, limits, {
    opentag: (tag) => {
      const name = local(tag.name);
      if (name === 'si') current = '';
      else if (name === 'rPh') phonetic++;
      else if (name === 't' && phonetic === 0) inText = true;
    },
    text: (text) => {
      if (!inText) return;
      current += text;
      checkCell(current, limits, `shared string ${strings.size}`);
    },
    closetag: (tag) => {
      const name = local(tag.name);
      if (name === 't') inText = false;
      else if (name === 'rPh') phonetic--;
      else if (name === 'si') {
        strings.add(current);
        current = '';
      }
    },
  });
  return strings;
}

/** A format code shows a date when it has d, m, y, h or s outside quotes, brackets and escapes. */
function isDateFormatCode(code: string): boolean {
  const bare = code.replace(/"[^"]*"|\[[^\]]*\]|\\.|_.|\*./g, '');
  return /[dmyhs]/i.test(bare);
}

/** For each cell style index, whether it shows numbers as dates. */
async function readDateStyles(zip: Zip, budget: Budget, limits: SourceLimits): Promise<boolean[]> {
  const custom = new Map<number, string>();
  const xfFormats: number[] = [];
  let inCellXfs = false;
  // Excel allows 64,000 cell formats; a styles part with more is not a workbook's.
  const tooMany = () => new SourceRejected('The xlsx file defines more than 65536 cell styles; it is not an ordinary workbook.');
  await parsePart(zip, 'xl/styles.xml', budget, limits, {
    opentag: (tag) => {
      const name = local(tag.name);
      if (name === 'numFmt') {
        if (custom.size >= 65536) throw tooMany();
        custom.set(Number(tag.attributes.numFmtId), String(tag.attributes.formatCode ?? ''));
      } else if (name === 'cellXfs') inCellXfs = true;
      else if (name === 'xf' && inCellXfs) {
        if (xfFormats.length >= 65536) throw tooMany();
        xfFormats.push(Number(tag.attributes.numFmtId ?? 0));
      }
    },
    closetag: (tag) => {
      if (local(tag.name) === 'cellXfs') inCellXfs = false;
    },
  });
  return xfFormats.map((id) => (custom.has(id) ? isDateFormatCode(custom.get(id) ?? '') : BUILTIN_DATE_FORMATS.has(id)));
}

function columnIndex(ref: string): number {
  let n = 0;
  for (let i = 0; i < ref.length; i++) {
    const code = ref.charCodeAt(i);
    if (code < 65 || code > 90) break;
    n = n * 26 + (code - 64);
  }
  return n - 1;
}

function serialToDate(serial: number): Date {
  return new Date(Math.round((serial - UNIX_EPOCH_SERIAL) * 86_400_000));
}

interface Cell {
  column: number;
  type: string;
  style: number;
  text: string;
}

function cellValue(cell: Cell, strings: SharedStrings, dateStyles: boolean[], where: string): unknown {
  const { type, text } = cell;
  if (text === '' && type !== 'inlineStr' && type !== 'str') return undefined;
  switch (type) {
    case 's': {
      const value = /^\d+$/.test(text) ? strings.get(Number(text)) : undefined;
      if (value === undefined) throw damaged(`${where} refers to shared string ${text}, which does not exist`);
      return value;
    }
    case 'inlineStr':
    case 'str':
    case 'e':
      return text;
    case 'b':
      return text === '1';
    case 'd':
      return toDate(text) ?? text;
    default: {
      const n = Number(text);
      if (!Number.isFinite(n)) return text;
      return dateStyles[cell.style] ? serialToDate(n) : n;
    }
  }
}

/**
 * Reads one sheet of an xlsx workbook: its columns (typed by every value under them), its rows
 * written to `spool` as they are read, and a log. The zip is read with yauzl and every part
 * streamed through a SAX parser; decompressed bytes, the shared-strings table, each cell's text,
 * what the parser may buffer, rows and columns are all capped as they are read, so a zip bomb, a
 * cell of hundreds of megabytes or a sheet of a million columns is refused without being held in
 * memory. Cells come typed: numbers, booleans, text, and dates for numbers in a date format.
 */
export async function readXlsxFile(file: string, sheetName: string | undefined, limits: SourceLimits, spool: RowSpool): Promise<{ columns: Column[]; log: ProcessingLog }> {
  const zip = await openZip(file);
  try {
    const budget = new Budget(limits.maxDecompressedBytes);
    const sheets = await readSheetList(zip, budget, limits);
    const sheet = sheetName === undefined ? sheets[0] : sheets.find((s) => s.name === sheetName);
    if (!sheet) {
      const names = sheets.map((s) => `"${s.name}"`).join(', ') || 'none';
      throw new SourceRejected(sheetName === undefined ? 'The workbook has no sheets.' : `The workbook has no sheet named "${sheetName}" (it has ${names}).`);
    }
    // What the parts say they hold, checked before inflating any; what they do hold is counted as they inflate.
    const declared = ['xl/sharedStrings.xml', 'xl/styles.xml', sheet.part].reduce((sum, name) => sum + (zip.entries.get(name)?.uncompressedSize ?? 0), 0);
    if (declared > limits.maxDecompressedBytes) throw budget.refusal();
    if (!zip.entries.has(sheet.part)) throw damaged(`sheet "${sheet.name}" is missing`);
    const strings = await readSharedStrings(zip, budget, limits);
    const dateStyles = await readDateStyles(zip, budget, limits);
    return await readSheet(zip, sheet, strings, dateStyles, budget, limits, spool);
  } finally {
    zip.file.close();
  }
}

async function readSheet(
  zip: Zip,
  sheet: SheetRef,
  strings: SharedStrings,
  dateStyles: boolean[],
  budget: Budget,
  limits: SourceLimits,
  spool: RowSpool,
): Promise<{ columns: Column[]; log: ProcessingLog }> {
  const log: ProcessingLog = { format: 'xlsx', sheet: sheet.name, rowsRead: 0, rowsSkipped: 0, skipped: [] };
  const types = new ColumnTypes();
  let headers: string[] | undefined;
  let rowsKept = 0;
  let rowNumber = 0;
  let values: unknown[] = [];
  let cell: Cell | undefined;
  let collecting = false;
  // Rows are complete inside parser events, which cannot wait; they queue here and are written
  // to the spool (with backpressure) between chunks of the part.
  let pending: unknown[][] = [];
  const where = () => `row ${rowNumber}, column ${(cell?.column ?? 0) + 1}`;

  const endRow = () => {
    const used = values.some((v) => v !== undefined && v !== '');
    if (!headers) {
      if (used) headers = Array.from(values, (v) => (v === undefined ? '' : asText(v)));
      return;
    }
    if (!used) return logSkip(log, rowNumber, 'blank row');
    if (values.length > headers.length && values.slice(headers.length).some((v) => v !== undefined && v !== '')) {
      return logSkip(log, rowNumber, `has values beyond the header's ${headers.length} columns`);
    }
    checkRoom(rowsKept, headers.length, limits, 'sheet');
    if (values.length > headers.length) values.length = headers.length;
    types.add(values);
    pending.push(values);
    rowsKept++;
    log.rowsRead++;
  };

  await parsePart(zip, sheet.part, budget, limits, {
    opentag: (tag) => {
      switch (local(tag.name)) {
        case 'row': {
          const r = tag.attributes.r === undefined ? rowNumber + 1 : Number(tag.attributes.r);
          if (!Number.isInteger(r) || r <= rowNumber || r > EXCEL_MAX_ROW) throw damaged(`row number ${String(tag.attributes.r)} out of order`);
          // Rows with nothing in them are left out of the file; they are blank rows all the same.
          if (headers) for (let gap = rowNumber + 1; gap < r; gap++) logSkip(log, gap, 'blank row');
          rowNumber = r;
          values = [];
          break;
        }
        case 'c': {
          const ref = tag.attributes.r;
          const column = ref === undefined ? values.length : columnIndex(String(ref));
          if (column < 0) throw damaged(`cell reference ${String(ref)}`);
          if (column >= limits.maxColumns) throw new SourceRejected(`The sheet uses more than ${limits.maxColumns} columns; at most ${limits.maxColumns} are allowed.`);
          cell = { column, type: String(tag.attributes.t ?? 'n'), style: Number(tag.attributes.s ?? 0), text: '' };
          break;
        }
        case 'v':
        case 't':
          collecting = cell !== undefined;
          break;
        case 'rPh':
          collecting = false;
          break;
      }
    },
    text: (text) => {
      if (!collecting || !cell) return;
      cell.text += text;
      checkCell(cell.text, limits, where());
    },
    closetag: (tag) => {
      switch (local(tag.name)) {
        case 'v':
        case 't':
          collecting = false;
          break;
        case 'c':
          if (cell) values[cell.column] = cellValue(cell, strings, dateStyles, where());
          cell = undefined;
          break;
        case 'row':
          endRow();
          break;
      }
    },
    drain: async () => {
      const rows = pending;
      pending = [];
      for (const row of rows) await spool.write(row);
    },
  });
  if (!headers) throw new SourceRejected(`Sheet "${sheet.name}" is empty.`);
  return { columns: types.columns(headers), log };
}
