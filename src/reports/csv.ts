import type { Writable } from 'node:stream';
import type { Column } from './spec';
import { asText, formatIsoDate, isBlank, toBoolean, toDate, toNumber } from './values';
import { CHUNK_BYTES, PROGRESS_EVERY, writeChunks, type ReportInput, type ReportResult } from './writer';

const BOM = '\uFEFF';
const NEEDS_QUOTES = /[",\r\n]/;
/**
 * Spreadsheet apps run a cell that starts with one of these as a formula (CSV injection, see
 * OWASP). A leading apostrophe makes them show it as text. Negative numbers are written from
 * numeric columns as numbers and left alone: only text is neutralised.
 */
const FORMULA_START = /^[=+\-@\t\r]/;

export function csvField(text: string): string {
  const safe = FORMULA_START.test(text) ? `'${text}` : text;
  return NEEDS_QUOTES.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

function formatCell(column: Column, value: unknown): string {
  if (isBlank(value)) return '';
  switch (column.type) {
    case 'number':
    case 'currency':
    case 'integer': {
      const n = toNumber(value);
      if (n !== undefined) return String(n);
      break;
    }
    case 'boolean': {
      const b = toBoolean(value);
      if (b !== undefined) return b ? 'true' : 'false';
      break;
    }
    case 'date': {
      const d = toDate(value);
      if (d) return formatIsoDate(d);
      break;
    }
    case 'string':
      break;
  }
  return csvField(asText(value));
}

async function* csvChunks(input: ReportInput, counter: { rows: number }): AsyncGenerator<Buffer> {
  const { columns, options = {}, onProgress } = input;
  let text = (options.bom ? BOM : '') + columns.map((c) => csvField(c.header)).join(',') + '\r\n';
  for await (const row of input.rows) {
    text += columns.map((c) => formatCell(c, row[c.key])).join(',') + '\r\n';
    counter.rows++;
    if (counter.rows % PROGRESS_EVERY === 0) onProgress?.(counter.rows);
    if (text.length >= CHUNK_BYTES) {
      yield Buffer.from(text, 'utf8');
      text = '';
    }
  }
  yield Buffer.from(text, 'utf8');
  onProgress?.(counter.rows);
}

/**
 * RFC 4180 CSV in UTF-8: CRLF line ends, fields quoted when they hold a quote, comma or line
 * break, a header line from the columns' headers, dates in ISO 8601, and an optional BOM (which
 * Excel needs to read UTF-8). The title is not written: a CSV has nowhere to put it.
 */
export async function writeCsv(input: ReportInput, out: Writable): Promise<ReportResult> {
  const counter = { rows: 0 };
  await writeChunks(csvChunks(input, counter), out);
  return { rows: counter.rows };
}
