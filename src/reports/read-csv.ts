import fs from 'node:fs';
import { parse, CsvError } from 'csv-parse';
import { SourceRejected } from '../errors';
import { inferColumns } from './columns';
import type { Row } from './spec';
import { checkRoom, logSkip, type ProcessingLog, type SourceLimits, type SourceTable } from './source-table';

/** One field this long is either not CSV or broken quoting swallowing the file. */
const MAX_RECORD_BYTES = 1024 * 1024;

/** The delimiter the header line uses most, outside quotes: Excel writes ';' in many locales. */
async function detectDelimiter(file: string): Promise<string> {
  const stream = fs.createReadStream(file, { start: 0, end: 64 * 1024 - 1, encoding: 'utf8' });
  let head = '';
  for await (const chunk of stream) head += chunk;
  const counts = new Map<string, number>([[',', 0], [';', 0], ['\t', 0]]);
  let quoted = false;
  for (const ch of head) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && (ch === '\n' || ch === '\r')) break;
    else if (!quoted && counts.has(ch)) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  }
  return [...counts].reduce((best, entry) => (entry[1] > best[1] ? entry : best))[0];
}

/** Rejects bytes that are not UTF-8 rather than reading them as replacement characters. */
async function checkUtf8(file: string): Promise<void> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  try {
    for await (const chunk of fs.createReadStream(file)) decoder.decode(chunk as Buffer, { stream: true });
    decoder.decode();
  } catch {
    throw new SourceRejected('The CSV file is not UTF-8 text. Save it as "CSV UTF-8" and upload it again.');
  }
}

/**
 * Reads a CSV (RFC 4180; comma, semicolon or tab, told from the header line; BOM allowed) into a
 * table. The first non-blank line is the header. Blank lines and lines with the wrong number of
 * fields are skipped and logged; broken quoting rejects the file with the line it happened on.
 */
export async function readCsvFile(file: string, limits: SourceLimits): Promise<SourceTable> {
  await checkUtf8(file);
  const parser = fs.createReadStream(file).pipe(
    parse({ bom: true, delimiter: await detectDelimiter(file), relax_column_count: true, max_record_size: MAX_RECORD_BYTES, info: true }),
  );
  const log: ProcessingLog = { format: 'csv', rowsRead: 0, rowsSkipped: 0, skipped: [] };
  let headers: string[] | undefined;
  const rows: Row[] = [];
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      const line = info.lines;
      if (record.every((field) => field.trim() === '')) {
        if (headers) logSkip(log, line, 'blank row');
        continue;
      }
      if (!headers) {
        if (record.length > limits.maxColumns) throw new SourceRejected(`The CSV has ${record.length} columns; at most ${limits.maxColumns} are allowed.`);
        headers = record;
        continue;
      }
      if (record.length !== headers.length) {
        logSkip(log, line, `has ${record.length} fields, expected ${headers.length}`);
        continue;
      }
      checkRoom(rows.length, headers.length, limits, 'CSV');
      const row: Row = {};
      record.forEach((field, i) => (row[`c${i + 1}`] = field));
      rows.push(row);
      log.rowsRead++;
    }
  } catch (err) {
    parser.destroy();
    if (err instanceof CsvError) throw new SourceRejected(`The CSV could not be read: ${err.message}`);
    throw err;
  }
  if (!headers) throw new SourceRejected('The CSV has no header line.');
  return { columns: inferColumns(headers, rows), rows, log };
}
