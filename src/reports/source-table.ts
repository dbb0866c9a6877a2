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
  /** Rows x columns: the table is held in memory, so this bounds what reading it costs. */
  maxCells: number;
}

export const DEFAULT_SOURCE_LIMITS: SourceLimits = {
  maxBytes: 50 * 1024 * 1024,
  maxDecompressedBytes: 500 * 1024 * 1024,
  maxRows: 1_000_000,
  maxColumns: 200,
  maxCells: 5_000_000,
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

export interface SourceTable {
  columns: Column[];
  rows: Row[];
  log: ProcessingLog;
}

export const MAX_SKIPS_LOGGED = 100;

/** Refuses one more data row when the table would pass maxRows or maxCells. */
export function checkRoom(rows: number, columns: number, limits: SourceLimits, what: string): void {
  if (rows >= limits.maxRows) throw new SourceRejected(`The ${what} has more than ${limits.maxRows} rows, the most a report can read.`);
  if ((rows + 1) * columns > limits.maxCells) {
    throw new SourceRejected(`The ${what} has more than ${limits.maxCells} cells (rows x columns), the most a report can read.`);
  }
}

export function logSkip(log: ProcessingLog, row: number, reason: string): void {
  log.rowsSkipped++;
  if (log.skipped.length < MAX_SKIPS_LOGGED) log.skipped.push({ row, reason });
}
