import { Writable } from 'node:stream';
import { parentPort } from 'node:worker_threads';
import { AppError } from '../errors';
import { readSourceFile } from './source';
import type { ReportFormat, Row } from './spec';
import { CHUNK_BYTES, type FromThread, MAX_IN_FLIGHT, type ReportJob, type ThreadError, type ToThread } from './thread-protocol';
import type { ProcessingLog } from './source-table';
import type { ReportInput, ReportResult, Rows, Table } from './writer';

/** Each writer is loaded when a job first needs it: pdfkit and its font cost about 25 MB. */
async function writer(format: ReportFormat): Promise<(input: ReportInput, out: Writable) => Promise<ReportResult>> {
  switch (format) {
    case 'csv':
      return (await import('./csv')).writeCsv;
    case 'xlsx':
      return (await import('./xlsx')).writeXlsx;
    case 'pdf':
      return (await import('./pdf')).writePdf;
  }
}

/*
 * A report thread (worker_threads): reads a source and writes the report's bytes, the work that
 * costs CPU and memory, away from the HTTP event loop and within the thread's own heap limit.
 * The bytes go back to the main thread, which stores them through the Files lifecycle.
 * See thread-protocol.ts for the conversation, thread-pool.ts for the main side.
 */

/** How often a source being read says how far it got. */
const PROGRESS_MS = 1000;

if (!parentPort) throw new Error('thread-entry.js runs as a report thread, not on its own');
const port = parentPort;
const send = (message: FromThread, transfer?: ArrayBuffer[]) => port.postMessage(message, transfer);

function describe(err: unknown): ThreadError {
  if (err instanceof AppError) return { name: err.name, code: err.code, message: err.message };
  const e = err instanceof Error ? err : new Error(String(err));
  return { name: e.name, message: e.message, stack: e.stack };
}

class Job {
  private allowWrite!: () => void;
  private readonly writeAllowed = new Promise<void>((resolve) => (this.allowWrite = resolve));
  private onRows: ((rows: Row[] | null) => void) | undefined;
  private onCredit: (() => void) | undefined;
  private inFlight = 0;

  constructor(private readonly job: ReportJob) {}

  receive(message: ToThread): void {
    if (message.type === 'write') this.allowWrite();
    else if (message.type === 'rows') this.onRows?.(message.rows);
    else if (message.type === 'credit') {
      this.inFlight--;
      const resume = this.onCredit;
      this.onCredit = undefined;
      resume?.();
    }
  }

  async run(): Promise<void> {
    const { job } = this;
    let dispose: (() => Promise<void>) | undefined;
    const disposers: (() => Promise<void>)[] = [];
    try {
      let rows: Rows;
      let columns = job.kind === 'inline' ? job.columns : [];
      let sheets: Table[] | undefined;
      if (job.kind === 'tables') {
        sheets = [];
        const logs: (ProcessingLog | null)[] = [];
        for (const [index, t] of job.tables.entries()) {
          if ('file' in t) {
            const table = await readSourceFile(t.file, { sheet: t.sheet, limits: job.limits, tempDir: job.tempDir, onRow: this.rowsRead() });
            disposers.push(table.dispose);
            sheets.push({ name: t.name, columns: table.columns, rows: table.rows });
            logs.push(table.log);
          } else {
            sheets.push({ name: t.name, columns: t.columns, rows: this.pull(index) });
            logs.push(null);
          }
        }
        columns = sheets[0].columns;
        rows = sheets[0].rows;
        send({ type: 'ready', logs });
      } else if (job.kind === 'source') {
        const table = await readSourceFile(job.file, { sheet: job.sheet, limits: job.limits, tempDir: job.tempDir, onRow: this.rowsRead() });
        dispose = table.dispose;
        columns = table.columns;
        rows = table.rows;
        send({ type: 'ready', log: table.log });
      } else {
        rows = this.pull();
        send({ type: 'ready' });
      }
      await this.writeAllowed;
      const logo = job.logo && { ...job.logo, data: Buffer.from(job.logo.data.buffer, job.logo.data.byteOffset, job.logo.data.byteLength) };
      const input = { title: job.title, columns, rows, sheets, options: job.options, logo, tempDir: job.tempDir, onProgress: (n: number) => send({ type: 'progress', rows: n }) };
      const write = await writer(job.format);
      const result = await write(input, this.output());
      send({ type: 'done', rows: result.rows });
    } catch (err) {
      send({ type: 'failed', error: describe(err) });
    } finally {
      await dispose?.().catch(() => undefined);
      for (const d of disposers) await d().catch(() => undefined);
    }
  }

  /** Counts the source's rows as they are read, saying how many every PROGRESS_MS: the job is moving. */
  private rowsRead(): () => void {
    let rows = 0;
    let last = Date.now();
    return () => {
      rows++;
      const now = Date.now();
      if (now - last < PROGRESS_MS) return;
      last = now;
      send({ type: 'progress', rows });
    };
  }

  /** Inline rows, a batch at a time, asked for as the writer needs them. */
  private async *pull(table?: number): AsyncGenerator<Row> {
    for (;;) {
      const batch = await new Promise<Row[] | null>((resolve) => {
        this.onRows = resolve;
        send({ type: 'more', table });
      });
      this.onRows = undefined;
      if (!batch) return;
      yield* batch;
    }
  }

  /**
   * The report's bytes, gathered into chunks of CHUNK_BYTES (pdfkit writes many small pieces)
   * and sent to the main thread; a write waits while MAX_IN_FLIGHT chunks are unacknowledged, so
   * a slow store slows the writer instead of filling memory.
   */
  private output(): Writable {
    let parts: Buffer[] = [];
    let size = 0;
    const flush = async () => {
      if (size === 0) return;
      // A fresh ArrayBuffer of its own, so it can be transferred (Buffers may share a pool).
      const data = new Uint8Array(size);
      let at = 0;
      for (const part of parts) {
        data.set(part, at);
        at += part.length;
      }
      parts = [];
      size = 0;
      while (this.inFlight >= MAX_IN_FLIGHT) await new Promise<void>((resolve) => (this.onCredit = resolve));
      this.inFlight++;
      send({ type: 'chunk', data }, [data.buffer]);
    };
    return new Writable({
      highWaterMark: CHUNK_BYTES,
      write(chunk: Buffer, _encoding, callback) {
        parts.push(chunk);
        size += chunk.length;
        if (size < CHUNK_BYTES) return callback();
        flush().then(() => callback(), callback);
      },
      final(callback) {
        flush().then(() => callback(), callback);
      },
    });
  }
}

let current: Job | undefined;
port.on('message', (message: ToThread) => {
  if (message.type === 'start') {
    current = new Job(message.job);
    void current.run();
  } else {
    current?.receive(message);
  }
});
