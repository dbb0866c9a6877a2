import fs from 'node:fs';
import { parse, CsvError } from 'csv-parse';
import { SourceRejected } from '../errors';
import { ColumnTypes } from './columns';
import type { RowSpool } from './row-spool';
import type { Column } from './spec';
import { checkCell, checkRoom, logSkip, type ProcessingLog, type SourceLimits } from './source-table';

/**
 * One record this long is either not CSV or broken quoting swallowing the file. csv-parse holds
 * a record whole while it reads it, so this also bounds what it buffers.
 */
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
 * Reads a CSV (RFC 4180; comma, semicolon or tab, told from the header line; BOM allowed): its
 * columns, typed by every value under them, its rows written to `spool` as they are read, and a
 * log. The first non-blank line is the header. Blank lines and lines with the wrong number of
 * fields are skipped and logged; broken quoting rejects the file with the line it happened on,
 * and a field longer than REPORT_SOURCE_MAX_CELL_BYTES rejects it too.
 */
export async function readCsvFile(file: string, limits: SourceLimits, spool: RowSpool): Promise<{ columns: Column[]; log: ProcessingLog }> {
  await checkUtf8(file);
  const parser = fs.createReadStream(file).pipe(
    parse({ bom: true, delimiter: await detectDelimiter(file), relax_column_count: true, max_record_size: MAX_RECORD_BYTES, info: true }),
  );
  const log: ProcessingLog = { format: 'csv', rowsRead: 0, rowsSkipped: 0, skipped: [] };
  const types = new ColumnTypes();
  let headers: string[] | undefined;
  let rows = 0;
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      const line = info.lines;
      if (record.every((field) => field.trim() === '')) {
        if (headers) logSkip(log, line, 'blank row');
        continue;
      }
      for (let i = 0; i < record.length; i++) checkCell(record[i], limits, `line ${line}, column ${i + 1}`);
      if (!headers) {
        if (record.length > limits.maxColumns) throw new SourceRejected(`The CSV has ${record.length} columns; at most ${limits.maxColumns} are allowed.`);
        headers = record;
        continue;
      }
      if (record.length !== headers.length) {
        logSkip(log, line, `has ${record.length} fields, expected ${headers.length}`);
        continue;
      }
      checkRoom(rows, headers.length, limits, 'CSV');
      types.add(record);
      await spool.write(record);
      rows++;
      log.rowsRead++;
    }
  } catch (err) {
    parser.destroy();
    if (err instanceof CsvError) throw new SourceRejected(`The CSV could not be read: ${err.message}`);
    throw err;
  }
  if (!headers) throw new SourceRejected('The CSV has no header line.');
  return { columns: types.columns(headers), log };
}
