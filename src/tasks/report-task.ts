import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import type { Logger } from 'pino';
import type { Config } from '../config';
import { FileElsewhere, FileMissing, REUPLOAD_MESSAGE, SourceRejected } from '../errors';
import type { Files } from '../files/files';
import { sanitizeFilename } from '../files/names';
import type { ProcessingLog, ReportInput, ReportRequest } from '../reports';
import { TaskFailure } from './task';
import type { TaskContext, TaskHandler } from './worker';

export const REPORT_TASK = 'report';
/** Progress is written to the database at most this often while rows stream out. */
const PROGRESS_INTERVAL_MS = 250;

/**
 * Turns row progress into task progress between `from` and `to` percent, writing at most every
 * PROGRESS_INTERVAL_MS. Writes are not awaited by the writer (it calls back synchronously); a
 * lost lease shows up as the task's abort signal, which stops the output stream.
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

/**
 * Builds a report (xlsx, pdf or csv) as a file owned by the requester, streamed into the store.
 * From inline rows, or from an uploaded CSV/XLSX read back from its store, in which case a
 * processing log file (rows read, rows skipped and why) is produced beside it.
 */
export function reportHandler(deps: { files: Files; sourceLimits: Config['reports']['source']; tempDir: string; log: Logger }): TaskHandler {
  return async (ctx) => {
    // Loaded on the first report, not at startup: pdfkit and its font cost about 25 MB.
    const { REPORT_CONTENT_TYPES, readSourceFile, spoolSource, writeReport } = await import('../reports');
    const request = ctx.task.payload as ReportRequest;
    const base = sanitizeFilename(request.title).replace(/\.(xlsx|pdf|csv)$/i, '');
    const name = `${base}.${request.format}`;
    // The job's temp files (the copied source, the row and page spools), removed however it ends.
    await fsp.mkdir(deps.tempDir, { recursive: true });
    const tempDir = await fsp.mkdtemp(path.join(deps.tempDir, 'stowage-report-'));
    const write = (columns: ReportInput['columns'], rows: ReportInput['rows'], total: number, from: number) =>
      ctx.output(name, REPORT_CONTENT_TYPES[request.format], (out: Writable) =>
        writeReport(
          request.format,
          { title: request.title, columns, rows, options: request.options, onProgress: rowProgress(ctx, total, from, 99), tempDir },
          out,
        ),
      );
    try {
      if (request.kind === 'inline') {
        await ctx.progress(1, `Building ${name} from ${request.rows.length} rows.`);
        await write(request.columns, request.rows, request.rows.length, 1);
        return `Built ${name} (${request.rows.length} rows).`;
      }

      const record = await deps.files.get(ctx.task.owner, request.source.fileId);
      if (!record) throw new TaskFailure('source_not_found', 'The source file does not exist (it may have been deleted).');
      if (record.status === 'missing' || record.status === 'failed') throw new TaskFailure('file_missing', REUPLOAD_MESSAGE);
      if (record.status === 'pending') throw new TaskFailure('source_not_ready', 'The source file is still being uploaded.');
      let table;
      try {
        const input = await deps.files.open(record, undefined, deps.log);
        await ctx.progress(1, `Reading ${record.name}.`);
        const file = path.join(tempDir, 'source');
        await spoolSource(input, file, deps.sourceLimits.maxBytes);
        // The rows go to a spool in tempDir as they are read, and stream from there to the writer.
        table = await readSourceFile(file, { sheet: request.source.sheet, limits: deps.sourceLimits, tempDir });
      } catch (err) {
        if (err instanceof FileMissing) throw new TaskFailure('file_missing', REUPLOAD_MESSAGE, { cause: err });
        // On another Machine's volume the blob is unreachable from here, but not missing. Tasks are
        // pinned to their source's Machine; this catches ones queued before they were.
        if (err instanceof FileElsewhere) {
          throw new TaskFailure('source_elsewhere', `The source file is on another machine's volume (${record.region ?? record.machine_id}); run a worker there, or use object storage.`, { cause: err });
        }
        if (err instanceof SourceRejected) throw new TaskFailure('source_rejected', err.message, { cause: err });
        throw err;
      }
      const { log } = table;
      await ctx.progress(30, `Read ${log.rowsRead} rows from ${record.name}; skipped ${log.rowsSkipped}.`);
      await write(table.columns, table.rows, log.rowsRead, 30);
      await ctx.output(`${base}-processing-log.txt`, 'text/plain; charset=utf-8', async (out) => {
        out.end(describeLog(record.name, log));
      });
      return `Built ${name} from ${record.name}: ${log.rowsRead} rows read, ${log.rowsSkipped} skipped.`;
    } finally {
      await fsp.rm(tempDir, { recursive: true, force: true });
    }
  };
}
