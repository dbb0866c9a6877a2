import fs from 'node:fs';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { SourceRejected } from '../errors';
import type { Row } from './spec';
import type { ProcessingLog } from './source-table';
import type { FromThread, ReportJob, ThreadError, ToThread } from './thread-protocol';

/**
 * A report job that failed for a reason of its own, not the source's: `report_memory_exceeded`
 * (its thread passed REPORT_WORKER_MAX_MB), `report_too_large` (REPORT_MAX_BYTES). Running it
 * again would fail the same way.
 */
export class ReportJobError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ReportJobError';
  }
}

export interface ReportThreadsOptions {
  /** Old-generation heap of each thread, in MB (resourceLimits.maxOldGenerationSizeMb). */
  maxHeapMb: number;
  /** Most bytes one report may produce. */
  maxOutputBytes: number;
  /** How long an idle thread is kept for the next job. */
  idleMs?: number;
  /** The thread's script; by default the compiled thread-entry.js (see threadEntry). */
  entry?: string;
}

export interface RunOptions {
  /** Aborting it stops the job at once: its thread is terminated. */
  signal?: AbortSignal;
  /** An inline job's rows (of `sheets[table]` in a tables job), a batch per call, undefined at the end. */
  nextRows?: (table?: number) => Row[] | undefined;
  /** Rows of the source read so far, then rows written so far. */
  onProgress?: (rows: number) => void;
}

/**
 * The compiled thread script. Compiled, it sits beside this file. Under ts-jest this file runs as
 * TypeScript, but a thread needs JavaScript: it runs the compiled copy in dist/, which jest's
 * global setup builds first (scripts/prepare.js, as `npm test` does).
 */
export function threadEntry(): string {
  if (path.extname(__filename) === '.js') return path.join(__dirname, 'thread-entry.js');
  return path.resolve(__dirname, '..', '..', 'dist', 'src', 'reports', 'thread-entry.js');
}

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A job can fail before anyone waits on every promise; that is not an unhandled rejection.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

function fromThread(error: ThreadError): Error {
  if (error.code === 'source_rejected') return new SourceRejected(error.message);
  if (error.code) return new ReportJobError(error.code, error.message);
  const err = new Error(`in the report thread: ${error.message}`);
  if (error.stack) err.stack = `${err.stack}\nThe thread's stack:\n${error.stack}`;
  return err;
}

/**
 * One job on one thread, from the main side. `ready` settles once the thread has read the source
 * (with its processing log) or, for inline rows, at once; `write(out)` then has the thread write
 * the report and streams its bytes into `out`; `close` gives the thread back (or ends it).
 */
export class ReportRun {
  private readonly readyState = deferred<{ log?: ProcessingLog; logs?: (ProcessingLog | null)[] }>();
  private readonly doneState = deferred<{ rows: number }>();
  private settled = false;
  /** Whether the thread must not run another job (killed, dead, or left mid-job). */
  private broken = false;
  private out: Writable | undefined;
  private bytes = 0;

  constructor(
    private readonly pool: ReportThreads,
    private readonly thread: Worker,
    job: ReportJob,
    private readonly options: RunOptions,
  ) {
    thread.on('message', this.onMessage);
    thread.on('error', this.onError);
    thread.on('exit', this.onExit);
    options.signal?.addEventListener('abort', this.onAbort, { once: true });
    if (options.signal?.aborted) this.onAbort();
    else this.post({ type: 'start', job });
  }

  get ready(): Promise<{ log?: ProcessingLog; logs?: (ProcessingLog | null)[] }> {
    return this.readyState.promise;
  }

  /** Streams the report into `out` (ending it); resolves with the rows written. */
  write(out: Writable): Promise<{ rows: number }> {
    if (!this.settled) {
      this.out = out;
      // A store that fails or stops reading ends the job; after 'done' these do nothing.
      out.once('error', this.onOutputGone);
      out.once('close', this.onOutputGone);
      this.post({ type: 'write' });
    }
    return this.doneState.promise;
  }

  /** Gives the thread back to the pool for the next job, or ends it if it cannot take one. */
  close(): void {
    this.thread.off('message', this.onMessage);
    this.thread.off('error', this.onError);
    this.thread.off('exit', this.onExit);
    this.options.signal?.removeEventListener('abort', this.onAbort);
    this.out?.off('error', this.onOutputGone);
    this.out?.off('close', this.onOutputGone);
    if (!this.settled) this.fail(new Error('the report job was abandoned'), true);
    this.pool.release(this.thread, this.broken);
  }

  private post(message: ToThread): void {
    this.thread.postMessage(message);
  }

  private fail(err: unknown, kill: boolean): void {
    if (this.settled) return;
    this.settled = true;
    this.readyState.reject(err);
    this.doneState.reject(err);
    if (kill) {
      this.broken = true;
      void this.thread.terminate();
    }
  }

  private readonly onMessage = (message: FromThread) => {
    if (this.settled) return;
    switch (message.type) {
      case 'ready':
        this.readyState.resolve({ log: message.log, logs: message.logs });
        break;
      case 'more':
        this.post({ type: 'rows', rows: this.options.nextRows?.(message.table) ?? null });
        break;
      case 'chunk': {
        const { data } = message;
        this.bytes += data.byteLength;
        if (this.bytes > this.pool.options.maxOutputBytes) {
          const max = this.pool.options.maxOutputBytes;
          this.fail(new ReportJobError('report_too_large', `The report is larger than the ${max} bytes allowed (REPORT_MAX_BYTES); ask for fewer rows or columns.`), true);
          return;
        }
        this.out?.write(Buffer.from(data.buffer, data.byteOffset, data.byteLength), (err) => {
          if (!err && !this.settled) this.post({ type: 'credit' });
        });
        break;
      }
      case 'progress':
        this.options.onProgress?.(message.rows);
        break;
      case 'done':
        this.settled = true;
        this.out?.end();
        this.doneState.resolve({ rows: message.rows });
        break;
      case 'failed':
        // The thread caught it and is ready for another job.
        this.fail(fromThread(message.error), false);
        break;
    }
  };

  private readonly onError = (err: Error & { code?: string }) => {
    this.broken = true;
    if (err.code === 'ERR_WORKER_OUT_OF_MEMORY') {
      const mb = this.pool.options.maxHeapMb;
      this.fail(
        new ReportJobError('report_memory_exceeded', `Building this report needed more than the ${mb} MB of memory a report may use (REPORT_WORKER_MAX_MB); it was stopped. Try fewer rows or columns, or another format.`, { cause: err }),
        false,
      );
    } else {
      this.fail(new Error(`the report thread failed: ${err.message}`, { cause: err }), false);
    }
  };

  private readonly onExit = (code: number) => {
    this.broken = true;
    this.fail(new Error(`the report thread exited (code ${code}) before the report was done`), false);
  };

  private readonly onOutputGone = (err?: Error) => {
    this.fail(err ?? new Error('the report output closed before the report was written'), true);
  };

  private readonly onAbort = () => {
    this.fail(this.options.signal?.reason ?? new Error('aborted'), true);
  };
}

/**
 * Threads that build reports (worker_threads), each with its own heap limit, so a report never
 * runs on the HTTP event loop and a job that blows its limit fails alone: the thread ends
 * (ERR_WORKER_OUT_OF_MEMORY), the process and its other requests carry on. A thread runs one job
 * at a time; finished threads wait `idleMs` for the next job (not keeping the process alive),
 * so there are never more threads than jobs running at once (the task worker's slots).
 */
export class ReportThreads {
  private readonly idle: { thread: Worker; timer: NodeJS.Timeout }[] = [];
  private readonly threads = new Set<Worker>();
  private closed = false;

  constructor(readonly options: ReportThreadsOptions) {}

  /** Starts `job` on an idle thread or a new one. */
  start(job: ReportJob, options: RunOptions = {}): ReportRun {
    if (this.closed) throw new Error('the report threads are closed');
    return new ReportRun(this, this.acquire(), job, options);
  }

  /** Threads alive now, busy or idle. */
  get size(): number {
    return this.threads.size;
  }

  /** Ends every thread, busy ones included (their jobs fail). */
  async close(): Promise<void> {
    this.closed = true;
    for (const { timer } of this.idle.splice(0)) clearTimeout(timer);
    await Promise.all([...this.threads].map((t) => t.terminate()));
  }

  /** @internal Called by ReportRun.close. */
  release(thread: Worker, broken: boolean): void {
    if (broken || this.closed) {
      void thread.terminate();
      return;
    }
    thread.unref();
    const timer = setTimeout(() => this.retire(thread), this.options.idleMs ?? 60_000);
    timer.unref();
    this.idle.push({ thread, timer });
  }

  private acquire(): Worker {
    const idle = this.idle.pop();
    if (idle) {
      clearTimeout(idle.timer);
      idle.thread.ref();
      return idle.thread;
    }
    const entry = this.options.entry ?? threadEntry();
    if (!fs.existsSync(entry)) throw new Error(`the report thread script ${entry} is missing: run \`npm run build\``);
    const thread = new Worker(entry, { resourceLimits: { maxOldGenerationSizeMb: this.options.maxHeapMb } });
    // An idle thread that fails must not take the process with it ('error' without a listener throws).
    thread.on('error', () => undefined);
    thread.once('exit', () => {
      this.threads.delete(thread);
      const at = this.idle.findIndex((i) => i.thread === thread);
      if (at >= 0) clearTimeout(this.idle.splice(at, 1)[0].timer);
    });
    this.threads.add(thread);
    return thread;
  }

  private retire(thread: Worker): void {
    const at = this.idle.findIndex((i) => i.thread === thread);
    if (at >= 0) this.idle.splice(at, 1);
    void thread.terminate();
  }
}
