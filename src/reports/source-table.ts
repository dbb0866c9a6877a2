import { SourceRejected } from '../errors';
import type { Column, Row } from './spec';

/** Safety limits for reading an uploaded file; every one is enforced while reading, not after. */
export interface SourceLimits {
  /** Bytes of the upload itself. */
  maxBytes: number;
  /** Bytes an xlsx may decompress to, over all the parts read (zip-bomb guard). */
  maxDecompressedBytes: number;
  /** Data rows kept; more is refused, not truncated. */
  maxRows: number;
  maxColumns: number;
  /** Rows x columns read from one source. */
  maxCells: number;
  /**
   * UTF-8 bytes of text in one cell (REPORT_SOURCE_MAX_CELL_BYTES). It also bounds what the XML
   * parser may buffer between two pieces of markup (see read-xlsx.ts), so no single string a
   * source makes is bigger than a few times this.
   */
  maxCellBytes: number;
  /** Bytes an xlsx's shared strings take in memory: their UTF-8 text plus 12 per string. */
  maxSharedStringsBytes: number;
}

export const DEFAULT_SOURCE_LIMITS: SourceLimits = {
  maxBytes: 100 * 1024 * 1024,
  maxDecompressedBytes: 500 * 1024 * 1024,
  maxRows: 1_000_000,
  maxColumns: 200,
  maxCells: 5_000_000,
  maxCellBytes: 128 * 1024,
  maxSharedStringsBytes: 64 * 1024 * 1024,
};

/** The variable that sets each limit, for messages that tell an operator what to raise. */
export const LIMIT_VARIABLES: Partial<Record<keyof SourceLimits, string>> = {
  maxBytes: 'REPORT_SOURCE_MAX_BYTES',
  maxDecompressedBytes: 'REPORT_SOURCE_MAX_DECOMPRESSED_BYTES',
  maxRows: 'REPORT_SOURCE_MAX_ROWS',
  maxCellBytes: 'REPORT_SOURCE_MAX_CELL_BYTES',
  maxSharedStringsBytes: 'REPORT_SOURCE_MAX_SHARED_STRINGS_BYTES',
};

export interface SkippedRow {
  /** 1-based line (CSV) or row number (XLSX) in the uploaded file. */
  row: number;
  reason: string;
}

export interface ProcessingLog {
  format: 'csv' | 'xlsx';
  sheet?: string;
  rowsRead: number;
  rowsSkipped: number;
  /** The first MAX_SKIPS_LOGGED skips, with why; `rowsSkipped` counts them all. */
  skipped: SkippedRow[];
}

/**
 * A source read into typed columns and a log. The rows are not in memory: they were written to a
 * spool file in the job's temp directory while the source was read, and stream from there.
 */
export interface SourceTable {
  columns: Column[];
  rows: AsyncIterable<Row>;
  log: ProcessingLog;
}

export const MAX_SKIPS_LOGGED = 100;

/** Refuses one more data row when the table would pass maxRows or maxCells. */
export function checkRoom(rows: number, columns: number, limits: SourceLimits, what: string): void {
  if (rows >= limits.maxRows) throw new SourceRejected(`The ${what} has more than ${limits.maxRows} rows, the most a report can read (REPORT_SOURCE_MAX_ROWS).`);
  if ((rows + 1) * columns > limits.maxCells) {
    throw new SourceRejected(`The ${what} has more than ${limits.maxCells} cells (rows x columns), the most a report can read.`);
  }
}

export function logSkip(log: ProcessingLog, row: number, reason: string): void {
  log.rowsSkipped++;
  if (log.skipped.length < MAX_SKIPS_LOGGED) log.skipped.push({ row, reason });
}

/**
 * UTF-8 bytes in `text`, or at least more than `max` when that is sure: UTF-8 never takes fewer
 * bytes than UTF-16 code units, nor more than three per unit, so most texts are settled by their
 * length without being measured.
 */
function exceeds(text: string, max: number): boolean {
  if (text.length > max) return true;
  if (text.length * 3 <= max) return false;
  return Buffer.byteLength(text, 'utf8') > max;
}

/** Refuses a cell whose text passes REPORT_SOURCE_MAX_CELL_BYTES. `where` is e.g. "row 7, column 3". */
export function checkCell(text: string, limits: SourceLimits, where: string): void {
  if (exceeds(text, limits.maxCellBytes)) throw cellTooLong(limits, where);
}

export function cellTooLong(limits: SourceLimits, where: string): SourceRejected {
  return new SourceRejected(
    `A cell (${where}) holds more than ${limits.maxCellBytes} bytes of text, the most a report reads from one cell (REPORT_SOURCE_MAX_CELL_BYTES); Excel itself keeps at most 32,767 characters in a cell.`,
  );
}
