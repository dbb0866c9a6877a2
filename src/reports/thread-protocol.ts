import type { Column, ReportFormat, ReportOptions, Row } from './spec';
import type { ProcessingLog, SourceLimits } from './source-table';

/*
 * What the main thread and a report thread say to each other (thread-pool.ts on the main side,
 * thread-entry.ts in the thread). One job at a time per thread:
 *
 *   main                                  thread
 *   start {job}                    ->     reads the source (or waits for inline rows)
 *                                  <-     progress {rows}      (rows of the source read so far)
 *                                  <-     ready {log}          (or failed {error})
 *   write                          ->     writes the report
 *                                  <-     more {table?}        (inline rows: the next batch of a table)
 *   rows {rows | null}             ->
 *                                  <-     chunk {data}         (at most MAX_IN_FLIGHT unacknowledged)
 *   credit                         ->     (one per chunk the output stream took)
 *                                  <-     progress {rows}
 *                                  <-     done {rows}          (or failed {error})
 */

interface JobBase {
  format: ReportFormat;
  title: string;
  options: ReportOptions;
  /** The job's own temp directory, made and removed by the main thread: spools go there. */
  tempDir: string;
  /** PDF: the logo's bytes, read and checked (logo.ts) by the main thread. */
  logo?: { data: Uint8Array; width: number; height: number };
}

/** Rows from the request itself, handed to the thread in batches as it asks for them. */
export interface InlineJob extends JobBase {
  kind: 'inline';
  columns: Column[];
}

/** Rows from an uploaded file, already spooled to `file` by the main thread. */
export interface SourceJob extends JobBase {
  kind: 'source';
  file: string;
  sheet?: string;
  limits: SourceLimits;
}

/** Several tables (`sheets`): inline ones ask for their rows by index, source ones are spooled files. */
export interface TablesJob extends JobBase {
  kind: 'tables';
  tables: ({ name: string; columns: Column[] } | { name: string; file: string; sheet?: string })[];
  limits: SourceLimits;
}

export type ReportJob = InlineJob | SourceJob | TablesJob;

export interface ThreadError {
  name: string;
  /** An AppError's code (source_rejected, report_too_large...). */
  code?: string;
  message: string;
  stack?: string;
}

export type ToThread = { type: 'start'; job: ReportJob } | { type: 'write' } | { type: 'rows'; rows: Row[] | null } | { type: 'credit' };

export type FromThread =
  | { type: 'ready'; log?: ProcessingLog; logs?: (ProcessingLog | null)[] }
  | { type: 'more'; table?: number }
  | { type: 'chunk'; data: Uint8Array }
  | { type: 'progress'; rows: number }
  | { type: 'done'; rows: number }
  | { type: 'failed'; error: ThreadError };

/** Output is sent in chunks of about this size. */
export const CHUNK_BYTES = 64 * 1024;
/** Chunks sent and not yet taken by the output stream: what the thread may run ahead by. */
export const MAX_IN_FLIGHT = 4;
