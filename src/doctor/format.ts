import { type DoctorReport, isLeftover, type Problem, problemCount } from './report';

const LABELS: Record<Problem['kind'], string> = {
  missing: 'missing',
  restorable: 'restorable',
  corrupt: 'corrupt',
  orphan: 'orphan',
  stale_pending: 'stale pending',
  unreachable: 'unreachable',
  stuck_task: 'stuck task',
  unmirrored: 'unmirrored',
  temp_leftover: 'temp leftover',
  source_leftover: 'source leftover',
  incomplete_upload: 'incomplete upload',
  tus_leftover: 'resumable upload leftover',
  webhook_given_up: 'webhook given up',
};

const DONE: Record<string, string> = {
  marked_missing: 'marked missing',
  marked_failed: 'marked failed',
  deleted: 'deleted',
  pruned: 'pruned',
  restored: 'restored from the mirror',
  mirror_queued: 'mirror copy queued',
  removed: 'removed',
  aborted: 'aborted',
};

/** 4194304 -> "4.0 MiB". */
export function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

/** Leftovers and incomplete or resumable uploads have no owner and no record: they get groups of their own, last. */
const LEFTOVERS = 'left behind by processes that are no longer running';
const UPLOADS = 'incomplete multipart uploads';
const TUS = 'resumable uploads nothing will finish';

/** One line: the numbers a cron mail or a CI log needs at a glance. */
export function summaryLine(report: DoctorReport): string {
  const s = report.summary;
  const found = [
    `records checked: ${s.recordsChecked}`,
    `missing: ${s.missing}`,
    // Only with a mirror can a file be restorable; other setups keep their familiar line.
    ...(s.restorable ? [`restorable: ${s.restorable}`] : []),
    `corrupt: ${s.corrupt}`,
    report.orphansSkipped ? 'orphans: not checked (--owner)' : `orphans: ${s.orphans}`,
    `stale pending: ${s.stalePending}`,
    `unreachable: ${s.unreachable}`,
    `stuck tasks: ${s.stuckTasks}`,
    ...(s.unmirrored ? [`unmirrored: ${s.unmirrored}`] : []),
    // Only when a dead process left something; other runs keep their familiar line.
    ...(s.tempLeftovers || s.sourceLeftovers
      ? [`temp leftovers: ${s.tempLeftovers}`, `source leftovers: ${s.sourceLeftovers} (${formatBytes(s.leftoverBytes)})`]
      : []),
    ...(report.incompleteUploadsUnchecked
      ? [`incomplete uploads: not checked (${report.incompleteUploadsUnchecked})`]
      : s.incompleteUploads
        ? [`incomplete uploads: ${s.incompleteUploads} (${formatBytes(s.incompleteUploadBytes)})`]
        : []),
    ...(s.tusLeftovers ? [`resumable upload leftovers: ${s.tusLeftovers} (${formatBytes(s.tusLeftoverBytes)})`] : []),
    ...(s.webhooksGivenUp ? [`webhooks given up: ${s.webhooksGivenUp}`] : []),
  ];
  const done = [`marked missing: ${s.markedMissing}`, `marked failed: ${s.markedFailed}`, `deleted: ${s.deleted}`, `pruned: ${s.pruned}`];
  if (s.restored) done.push(`restored: ${s.restored}`);
  if (s.mirrorQueued) done.push(`mirror copies queued: ${s.mirrorQueued}`);
  if (s.removed) done.push(`removed: ${s.removed}`);
  if (s.aborted) done.push(`aborted: ${s.aborted}`);
  if (s.actionErrors) done.push(`failed actions: ${s.actionErrors}`);
  return `${found.join(', ')}; ${done.join(', ')}`;
}

/**
 * The report for a person: problems grouped by owner (orphan blobs, which have no owner, last),
 * each with its id, name, store key, reason and what was done about it, then the summary line.
 */
export function formatText(report: DoctorReport): string {
  const done = new Map(report.actions.map((a) => [a.problem, DONE[a.action]]));
  const groups = new Map<string, Problem[]>();
  for (const problem of report.problems) {
    const group = isLeftover(problem)
      ? LEFTOVERS
      : problem.kind === 'incomplete_upload'
        ? UPLOADS
        : problem.kind === 'tus_leftover'
          ? TUS
          : problem.owner === undefined
            ? ''
            : `owner ${problem.owner}`;
    groups.set(group, [...(groups.get(group) ?? []), problem]);
  }
  const rank = (g: string) => (g === TUS ? 4 : g === UPLOADS ? 3 : g === LEFTOVERS ? 2 : g === '' ? 1 : 0);
  const order = [...groups.keys()].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  const lines: string[] = [];
  const count = problemCount(report.summary);
  lines.push(count === 0 ? 'No problems found.' : `${count} problem${count === 1 ? '' : 's'} found.`);
  for (const group of order) {
    lines.push('', group || 'no owner (blobs without a record)');
    for (const p of groups.get(group)!) {
      const action = done.get(p);
      const what = isLeftover(p)
        ? `${p.kind === 'temp_leftover' ? 'temp file' : 'source copy'} ${p.path}`
        : p.kind === 'stuck_task'
          ? `task ${p.taskId} (${p.taskKind}, ${p.status})`
          : p.kind === 'incomplete_upload'
            ? `multipart upload ${p.uploadId} at ${p.store}:${p.key}`
            : p.kind === 'tus_leftover'
              ? `${formatBytes(p.bytes)} at ${p.store}:${p.key}, last written ${p.modifiedAt}`
              : p.kind === 'webhook_given_up'
                ? `delivery ${p.deliveryId} (${p.type} to ${p.endpoint})`
                : `${p.fileId ? `${p.fileId} "${p.name}"` : 'blob'} at ${p.store}:${p.key}`;
      lines.push(`  ${LABELS[p.kind]}: ${what}: ${p.reason}${action ? ` [${action}]` : ''}`);
    }
  }
  lines.push('', summaryLine(report));
  return `${lines.join('\n')}\n`;
}

/** The report for a machine: one JSON document on one line. */
export function formatJson(report: DoctorReport): string {
  return `${JSON.stringify({ ok: problemCount(report.summary) === 0, ...report })}\n`;
}
