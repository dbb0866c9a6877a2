import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config';
import { FILE_MISSING_MESSAGE, FileElsewhere, FileMissing, isOutOfSpace, LogoRejected, SourceRejected } from '../errors';
import type { Files } from '../files/files';
import { sanitizeFilename } from '../files/names';
import { outputLifetime, REPORT_CONTENT_TYPES, type ReportRequest, type Row } from '../reports/spec';
import { checkLogo, LOGO_MAX_BYTES } from '../reports/logo';
import { DEFAULT_SOURCE_LIMITS, type ProcessingLog } from '../reports/source-table';
import { spoolSource } from '../reports/spool-source';
import { ReportJobError, type ReportRun, type ReportThreads } from '../reports/thread-pool';
import type { TablesJob } from '../reports/thread-protocol';
import { TaskFailure } from './task';
import type { TaskContext, TaskHandler } from './worker';

export const REPORT_TASK = 'report';
/** Progress is written to the database at most this often while rows stream out. */
const PROGRESS_INTERVAL_MS = 250;
/** Inline rows go to the report thread in batches of about this many cells (a few ms to copy each). */
const BATCH_CELLS = 20_000;

/**
 * Turns row progress into task progress between `from` and `to` percent, writing at most every
 * PROGRESS_INTERVAL_MS. Writes are not awaited by the writer (it calls back synchronously); a
 * lost lease shows up as the task's abort signal, which stops the report's thread.
 */
function rowProgress(ctx: TaskContext, total: number, from: number, to: number) {
  let last = 0;
  return (rows: number) => {
    const now = Date.now();
    if (now - last < PROGRESS_INTERVAL_MS || total === 0) return;
    last = now;
    ctx.progress(from + ((to - from) * Math.min(rows, total)) / total).catch(() => undefined);
  };
}

function describeLog(sourceName: string, log: ProcessingLog): string {
  const lines = [
    `Source: ${sourceName} (${log.format}${log.sheet ? `, sheet "${log.sheet}"` : ''})`,
    `Rows read: ${log.rowsRead}`,
    `Rows skipped: ${log.rowsSkipped}`,
    ...log.skipped.map((s) => `  row ${s.row}: ${s.reason}`),
  ];
  if (log.rowsSkipped > log.skipped.length) lines.push(`  ... and ${log.rowsSkipped - log.skipped.length} more`);
  return `${lines.join('\n')}\n`;
}

/** Hands inline rows over a batch at a time, as the report thread asks for them. */
function batches(rows: Row[], columns: number): () => Row[] | undefined {
  const size = Math.max(1, Math.floor(BATCH_CELLS / Math.max(1, columns)));
  let at = 0;
  return () => {
    if (at >= rows.length) return undefined;
    at += size;
    return rows.slice(at - size, at);
  };
}

/** Reads the owner's logo upload (at most LOGO_MAX_BYTES of it) and checks it is a PNG or JPEG it can print. */
async function loadLogo(deps: ReportHandlerDeps, owner: string, fileId: string): Promise<{ data: Uint8Array; width: number; height: number }> {
  const record = await deps.files.get(owner, fileId);
  if (!record || record.status !== 'ready') throw new TaskFailure('logo_not_found', 'The logo file (options.logo.fileId) does not exist or is not ready.');
  if (record.size > LOGO_MAX_BYTES) throw new TaskFailure('logo_rejected', `The logo is larger than ${LOGO_MAX_BYTES} bytes.`);
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of await deps.files.open(record, undefined, deps.log)) {
      size += (chunk as Buffer).length;
      if (size > LOGO_MAX_BYTES) throw new LogoRejected(`The logo is larger than ${LOGO_MAX_BYTES} bytes.`);
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    if (err instanceof FileMissing) throw new TaskFailure('logo_not_found', err.message, { cause: err });
    throw err;
  }
  const data = Buffer.concat(chunks);
  const { width, height } = checkLogo(data);
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width, height };
}

/** Copies the owner's source file from its store to `file`, failing the task if it can't be read. */
async function copySource(deps: ReportHandlerDeps, ctx: TaskContext, fileId: string, file: string): Promise<NonNullable<Awaited<ReturnType<Files['get']>>>> {
  const record = await deps.files.get(ctx.task.owner, fileId);
  if (!record) throw new TaskFailure('source_not_found', 'The source file does not exist (it may have been deleted).');
  // What a download of it answers: the record's own message.
  if (record.status === 'missing' || record.status === 'failed') throw new TaskFailure('file_missing', record.status_message ?? FILE_MISSING_MESSAGE);
  if (record.status === 'pending') throw new TaskFailure('source_not_ready', 'The source file is still being uploaded.');
  try {
    const input = await deps.files.open(record, undefined, deps.log);
    await ctx.progress(1, `Reading ${record.name}.`);
    await spoolSource(input, file, deps.sourceLimits.maxBytes, ctx.working);
  } catch (err) {
    if (err instanceof FileMissing) throw new TaskFailure('file_missing', err.message, { cause: err });
    // On another Machine's volume the blob is unreachable from here, but not missing. Tasks are
    // pinned to their source's Machine; this catches ones queued before they were.
    if (err instanceof FileElsewhere) {
      throw new TaskFailure('source_elsewhere', `The source file is on another machine's volume (${record.region ?? record.machine_id}); run a worker there, or use object storage.`, { cause: err });
    }
    throw err;
  }
  return record;
}

export interface ReportHandlerDeps {
  files: Files;
  /** Where reports are built: threads with their own heap limit (REPORT_WORKER_MAX_MB). */
  threads: ReportThreads;
  sourceLimits: Config['reports']['source'];
  /**
   * This process's work directory: each job gets a directory of its own under it, removed when the
   * job ends however it ends, and swept with the directory if the process dies.
   */
  tempDir: string;
  /** How long outputs are kept when the request doesn't say (REPORT_TTL); null: until deleted. */
  ttlMs?: number | null;
  log: Logger;
}

/**
 * Builds a report (xlsx, pdf or csv) as a file owned by the requester, streamed into the store.
 * From inline rows, or from an uploaded CSV/XLSX read back from its store, in which case a
 * processing log file (rows read, rows skipped and why) is produced beside it.
 *
 * What runs where: this handler, on the main thread, does the I/O and keeps the Files lifecycle
 * (it copies the source from its store to the job's temp directory, stores each output through
 * ctx.output, writes progress). Reading the source and writing the report's bytes run in a report
 * thread (reports/thread-pool.ts), which streams the bytes back into ctx.output. A thread that
 * passes its memory limit fails the task with `report_memory_exceeded`, a report past
 * REPORT_MAX_BYTES with `report_too_large`; neither is retried, and the partial output is
 * discarded as any failed task's is.
 */
export function reportHandler(deps: ReportHandlerDeps): TaskHandler {
  const build = buildReport(deps);
  return async (ctx) => {
    try {
      return await build(ctx);
    } catch (err) {
      // A full disk (the store, the catalog, the source copy) fails the report once, saying so:
      // retrying at once would only fill it again.
      if (!(err instanceof TaskFailure) && isOutOfSpace(err)) throw new TaskFailure('insufficient_storage', NO_SPACE_FOR_REPORT, { cause: err });
      throw err;
    }
  };
}

const NO_SPACE_FOR_REPORT = 'There was not enough storage space left to build this report. Request it again once space has been freed.';

function buildReport(deps: ReportHandlerDeps): TaskHandler {
  return async (ctx) => {
    const request = ctx.task.payload as ReportRequest;
    const base = sanitizeFilename(request.title).replace(/\.(xlsx|pdf|csv)$/i, '');
    const name = `${base}.${request.format}`;
    const contentType = REPORT_CONTENT_TYPES[request.format];
    const kept = { lifetimeMs: outputLifetime(request, deps.ttlMs ?? null) };
    await fsp.mkdir(deps.tempDir, { recursive: true });
    const tempDir = await fsp.mkdtemp(path.join(deps.tempDir, 'stowage-report-'));
    // The workbook's and PDF's author: as asked, else the owner who asked for the report.
    const options = { ...request.options, author: request.options.author ?? ctx.task.owner };
    let run: ReportRun | undefined;
    try {
      const logo = request.format === 'pdf' && request.options.logo ? await loadLogo(deps, ctx.task.owner, request.options.logo.fileId) : undefined;
      const job = { format: request.format, title: request.title, options, tempDir, logo };
      if (request.kind === 'inline') {
        await ctx.progress(1, `Building ${name} from ${request.rows.length} rows.`);
        run = deps.threads.start(
          { kind: 'inline', ...job, columns: request.columns },
          { signal: ctx.signal, nextRows: batches(request.rows, request.columns.length), onProgress: rowProgress(ctx, request.rows.length, 1, 99) },
        );
        await run.ready;
        await ctx.output(name, contentType, (out) => run!.write(out), kept);
        return `Built ${name} (${request.rows.length} rows).`;
      }

      const limits = { ...DEFAULT_SOURCE_LIMITS, ...deps.sourceLimits };
      if (request.kind === 'sheets') {
        // Sources are copied first, inline tables' rows handed over as the thread asks for them.
        const tables: TablesJob['tables'] = [];
        const sources: string[] = [];
        for (const [i, sheet] of request.sheets.entries()) {
          if ('source' in sheet) {
            const file = path.join(tempDir, `source-${i}`);
            sources.push((await copySource(deps, ctx, sheet.source.fileId, file)).name);
            tables.push({ name: sheet.name, file, sheet: sheet.source.sheet });
          } else {
            tables.push({ name: sheet.name, columns: sheet.columns });
          }
        }
        const next = request.sheets.map((s) => ('rows' in s ? batches(s.rows, s.columns.length) : () => undefined));
        let progress = (_rows: number) => ctx.working();
        run = deps.threads.start({ kind: 'tables', ...job, tables, limits }, { signal: ctx.signal, nextRows: (t) => next[t ?? 0](), onProgress: (rows) => progress(rows) });
        const logs = (await run.ready).logs ?? [];
        const total = request.sheets.reduce((sum, s, i) => sum + ('rows' in s ? s.rows.length : (logs[i]?.rowsRead ?? 0)), 0);
        progress = rowProgress(ctx, total, 30, 99);
        await ctx.output(name, contentType, (out) => run!.write(out), kept);
        if (sources.length) {
          const text = logs.filter((log) => log !== null).map((log, i) => describeLog(sources[i], log)).join('\n');
          await ctx.output(`${base}-processing-log.txt`, 'text/plain; charset=utf-8', async (out) => out.end(text), kept);
        }
        return `Built ${name} (${request.sheets.length} tables, ${total} rows).`;
      }

      const file = path.join(tempDir, 'source');
      const record = await copySource(deps, ctx, request.source.fileId, file);
      // While the source is read, rows say the task is moving; then they are its progress.
      let progress = (_rows: number) => ctx.working();
      run = deps.threads.start(
        { kind: 'source', ...job, file, sheet: request.source.sheet, limits },
        { signal: ctx.signal, onProgress: (rows) => progress(rows) },
      );
      const log = (await run.ready).log!;
      await ctx.progress(30, `Read ${log.rowsRead} rows from ${record.name}; skipped ${log.rowsSkipped}.`);
      progress = rowProgress(ctx, log.rowsRead, 30, 99);
      await ctx.output(name, contentType, (out) => run!.write(out), kept);
      await ctx.output(`${base}-processing-log.txt`, 'text/plain; charset=utf-8', async (out) => {
        out.end(describeLog(record.name, log));
      }, kept);
      return `Built ${name} from ${record.name}: ${log.rowsRead} rows read, ${log.rowsSkipped} skipped.`;
    } catch (err) {
      if (err instanceof SourceRejected || err instanceof LogoRejected) throw new TaskFailure(err.code, err.message, { cause: err });
      if (err instanceof ReportJobError) throw new TaskFailure(err.code, err.message, { cause: err });
      throw err;
    } finally {
      run?.close();
      await fsp.rm(tempDir, { recursive: true, force: true });
    }
  };
}
