import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Column, ReportOptions, Row } from './spec';

export type Rows = Iterable<Row> | AsyncIterable<Row>;

/** One table of a report with several (`sheets`). */
export interface Table {
  name: string;
  columns: Column[];
  rows: Rows;
}

/** What every format's writer takes; `rows` is read once, in order, as the output is written. */
export interface ReportInput {
  title: string;
  columns: Column[];
  /**
   * Several tables (xlsx and pdf): when given, these are the report's content, in order, and
   * `columns` and `rows` are the first one's.
   */
  sheets?: Table[];
  options?: ReportOptions;
  rows: Rows;
  /** Called with the number of rows written so far, every PROGRESS_EVERY rows and at the end. */
  onProgress?: (rowsDone: number) => void;
  /** PDF: a logo checked by logo.ts (PNG or JPEG), drawn on every page. */
  logo?: { data: Buffer; width: number; height: number };
  /** When the report is generated (its generated-at line, `{date}`); now by default. */
  now?: Date;
  /** Where a writer keeps temp files (the job's directory); the OS temp directory by default. */
  tempDir?: string;
}

/** The tables a writer writes: `sheets`, or the one table of `columns` and `rows`. */
export function tablesOf(input: ReportInput): (Omit<Table, 'name'> & { name?: string })[] {
  return input.sheets ?? [{ columns: input.columns, rows: input.rows }];
}

export interface ReportResult {
  rows: number;
}

export const PROGRESS_EVERY = 1000;

/** Output is handed to the stream in chunks of about this size, not row by row. */
export const CHUNK_BYTES = 64 * 1024;

/**
 * Streams `chunks` into `out` with backpressure and ends it. If `out` fails, the generator is
 * stopped (its finally blocks run); if the generator throws, `out` is destroyed with that error,
 * so a store's streaming put discards the partial object.
 */
export async function writeChunks(chunks: AsyncIterable<Buffer>, out: Writable): Promise<void> {
  await pipeline(Readable.from(chunks, { objectMode: false }), out);
}

/**
 * Resolves once `stream` can take more, or is closed: on 'close' too, so a producer whose reader
 * stopped early stops producing instead of waiting for ever.
 */
export function drainedOrClosed(stream: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}
