import { type DoctorReport, type Problem, problemCount } from './report';

const LABELS: Record<Problem['kind'], string> = {
  missing: 'missing',
  restorable: 'restorable',
  corrupt: 'corrupt',
  orphan: 'orphan',
  stale_pending: 'stale pending',
  unreachable: 'unreachable',
  stuck_task: 'stuck task',
  unmirrored: 'unmirrored',
};

const DONE: Record<string, string> = {
  marked_failed: 'marked failed',
  deleted: 'deleted',
  pruned: 'pruned',
  restored: 'restored from the mirror',
  mirror_queued: 'mirror copy queued',
};

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
  ];
  const done = [`marked failed: ${s.markedFailed}`, `deleted: ${s.deleted}`, `pruned: ${s.pruned}`];
  if (s.restored) done.push(`restored: ${s.restored}`);
  if (s.mirrorQueued) done.push(`mirror copies queued: ${s.mirrorQueued}`);
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
    const group = problem.owner === undefined ? '' : `owner ${problem.owner}`;
    groups.set(group, [...(groups.get(group) ?? []), problem]);
  }
  const order = [...groups.keys()].sort((a, b) => (a === '' ? 1 : b === '' ? -1 : a.localeCompare(b)));
  const lines: string[] = [];
  const count = problemCount(report.summary);
  lines.push(count === 0 ? 'No problems found.' : `${count} problem${count === 1 ? '' : 's'} found.`);
  for (const group of order) {
    lines.push('', group || 'no owner (blobs without a record)');
    for (const p of groups.get(group)!) {
      const action = done.get(p);
      const what =
        p.kind === 'stuck_task' ? `task ${p.taskId} (${p.taskKind}, ${p.status})` : `${p.fileId ? `${p.fileId} "${p.name}"` : 'blob'} at ${p.store}:${p.key}`;
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
