import type { FileRecord } from '../catalog/files';
import { LIMITS, type ReportFormat } from '../reports/spec';
import type { TaskStatus } from '../catalog/schema';
import { FINISHED } from '../tasks/task';
import { formatBytes, formatTime } from './format';
import { html, type Html } from './html';

/** A report task as `GET /v1/tasks/:id` presents it, plus what was asked for. */
export interface ReportTaskView {
  id: string;
  status: string;
  /** Set while no worker can run it. */
  waiting?: string;
  progress: number;
  log: { message: string }[];
  error: { message: string | null } | null;
  outputs: { name: string; links: { content: string } }[];
  title: string;
  format: ReportFormat;
}

export const FORMAT_LABELS: Record<ReportFormat, string> = { xlsx: 'Excel (.xlsx)', pdf: 'PDF', csv: 'CSV' };

/**
 * What the status line says. The page script gets the same table (a JSON block), so the live
 * panel and the reloaded page read alike. A queued task that already has an error is waiting to
 * be retried; one with `waiting` has no worker to run it.
 */
export const TASK_LABELS: Record<string, string> = {
  queued: 'Waiting to start…',
  no_worker: 'Waiting: no worker is running to build it. It starts when one does.',
  retrying: 'Something went wrong; trying again shortly…',
  running: 'Building the report…',
  succeeded: 'Done: your report is ready.',
  failed: 'The report could not be made.',
  cancelled: 'Cancelled.',
};

export const isFinished = (status: string) => FINISHED.includes(status as TaskStatus);

function statusLabel(task: ReportTaskView): string {
  const key = task.waiting ? 'no_worker' : task.status === 'queued' && task.error ? 'retrying' : task.status;
  return TASK_LABELS[key] ?? task.status;
}

function sourceOptions(sources: FileRecord[] | undefined): Html {
  if (!sources) return html`<option value="">The list of files could not be loaded</option>`;
  if (sources.length === 0) return html`<option value="">No CSV or Excel files yet: upload one above</option>`;
  return html`${sources.map((f) => html`<option value="${f.id}">${f.name} (${formatBytes(Number(f.size))}, ${formatTime(f.created_at)})</option>`)}`;
}

/**
 * The task's status, progress, log and results. Rendered empty and hidden until there is a task:
 * the page script fills the same elements from the task's server-sent events.
 */
function taskPanel(task: ReportTaskView | undefined): Html {
  const percent = task ? Math.round(task.status === 'succeeded' ? 100 : task.progress) : 0;
  const failure = task?.status === 'failed' ? (task.error?.message ?? '') : '';
  return html`<div id="report-task" class="report-task"${task ? html` data-task-id="${task.id}" data-status="${task.status}"` : html` hidden`}>
<h3 class="report-title">${task ? `${task.title} – ${FORMAT_LABELS[task.format]}` : ''}</h3>
<p class="report-status" role="status">${task ? statusLabel(task) : ''}</p>
<progress class="report-progress" max="100" value="${percent}" aria-label="Report progress">${percent}%</progress>
<ol class="report-log" aria-live="polite" aria-label="Report log">${task?.log.map((line) => html`<li>${line.message}</li>`)}</ol>
<p class="report-error"${failure ? '' : html` hidden`}>${failure}</p>
<ul class="report-outputs" aria-label="Report files">${
    task?.status === 'succeeded' &&
    task.outputs.map((o) => html`<li><a class="button" href="${o.links.content}" download>Download ${o.name}</a></li>`)
  }</ul>
</div>`;
}

/** The "Make a report" form: a source file, a format, a title; then the task's panel. */
export function reportSection(sources: FileRecord[] | undefined, task: ReportTaskView | undefined, notice: Html): Html {
  return html`<section id="report" class="report" aria-labelledby="report-heading">
<h2 id="report-heading">Make a report</h2>
<div id="report-notice" class="notice-area" role="status" aria-live="polite">${notice}</div>
<form id="report-form" method="post" action="/report">
<div class="field">
<label for="report-source">From file</label>
<select id="report-source" name="source" required>${sourceOptions(sources)}</select>
<span class="hint">Your uploaded CSV and Excel (.xlsx) files.</span>
</div>
<fieldset class="field formats">
<legend>Format</legend>
${(Object.keys(FORMAT_LABELS) as ReportFormat[]).map(
  (f) => html`<label><input type="radio" name="format" value="${f}"${f === 'xlsx' ? html` checked` : ''}> ${FORMAT_LABELS[f]}</label>`,
)}
</fieldset>
<div class="field">
<label for="report-title">Title</label>
<input id="report-title" name="title" type="text" required maxlength="${LIMITS.maxTitleLength}" placeholder="Sales Q3">
</div>
<button type="submit" class="button button-primary">Make the report</button>
</form>
${taskPanel(task)}
</section>`;
}
