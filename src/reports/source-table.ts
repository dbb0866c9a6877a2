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
}

export const DEFAULT_SOURCE_LIMITS: SourceLimits = {
  maxBytes: 100 * 1024 * 1024,
  maxDecompressedBytes: 500 * 1024 * 1024,
  maxRows: 1_000_000,
  maxColumns: 200,
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

export function logSkip(log: ProcessingLog, row: number, reason: string): void {
  log.rowsSkipped++;
  if (log.skipped.length < MAX_SKIPS_LOGGED) log.skipped.push({ row, reason });
}
