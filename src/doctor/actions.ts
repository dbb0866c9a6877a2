import type { FileStatus } from '../catalog/schema';
import { FILE_MISSING_MESSAGE } from '../errors';
import { removeLeftover } from '../leftovers';
import type { DoctorDeps, DoctorScope } from './context';
import { copyVerified } from '../mirror/copy-blob';
import { MIRROR_TASK, mirrorPayload, mirrorTaskRow } from '../mirror/enqueue';
import { keysWithRecords } from './check-orphans';
import {
  type Action,
  type ActionKind,
  countAction,
  type DoctorReport,
  type FileProblem,
  type IncompleteUploadProblem,
  isLeftover,
  type LeftoverProblem,
  type Problem,
  type TusLeftoverProblem,
} from './report';
import { notInProgress } from './check-tus';

const CORRUPT_MESSAGE = 'File damaged in storage. Please re-upload it.';
const UNFINISHED_MESSAGE = 'The upload did not finish. Please re-upload your file.';

export interface Remedies {
  /**
   * Mark records whose blob is gone `missing` (as a download that finds it gone does), corrupt and
   * stale pending ones `failed`, each with a message users see; restore
   * restorable ones from the mirror; queue a mirror copy of unmirrored ones; remove the temp
   * files and source copies dead processes left; abort incomplete multipart uploads.
   */
  fix: boolean;
  /** Delete those records and whatever blob they had (the caller has confirmed). */
  delete: boolean;
  /** Delete orphan blobs (they are all past the grace period). */
  pruneOrphans: boolean;
}

/** Problems an action may touch; `unreachable` ones are never acted on: the store may be fine. */
const RECORD_PROBLEMS = new Set<FileProblem['kind']>(['missing', 'corrupt', 'stale_pending']);

/**
 * Each record change is conditional on the status the check saw, so a record that changed since
 * (deleted by its owner, finished uploading) is left alone. Orphans are re-checked just before
 * deletion. Every action is logged and counted; a failed one is logged and left for next time.
 */
export async function applyRemedies(deps: DoctorDeps, scope: DoctorScope, report: DoctorReport, remedies: Remedies): Promise<void> {
  const { summary } = report;
  const what = (problem: Problem) =>
    isLeftover(problem)
      ? problem.path
      : problem.kind === 'stuck_task'
        ? problem.taskId
        : problem.kind === 'webhook_given_up'
          ? problem.deliveryId
        : problem.kind === 'incomplete_upload'
          ? `multipart upload ${problem.uploadId} of ${problem.key}`
          : problem.kind === 'tus_leftover'
            ? `resumable upload ${problem.store}:${problem.key}`
            : (problem.fileId ?? problem.key);
  const record = (action: ActionKind, problem: FileProblem | LeftoverProblem | IncompleteUploadProblem | TusLeftoverProblem) => {
    report.actions.push({ action, problem } satisfies Action);
    countAction(summary, action);
    deps.log.info({ event: 'doctor.action', action, ...problem }, `doctor ${action.replace('_', ' ')} ${what(problem)}`);
  };
  for (const problem of report.problems) {
    // Stuck tasks are reported for an operator to start a worker; nothing here can fix that.
    if (problem.kind === 'stuck_task') continue;
    // A given-up delivery is for the endpoint's owner to look into (GET /v1/webhooks/deliveries).
    if (problem.kind === 'webhook_given_up') continue;
    if (isLeftover(problem)) {
      if (!remedies.fix) continue;
      try {
        if (await removeLeftoverProblem(deps, scope, problem)) record('removed', problem);
      } catch (err) {
        summary.actionErrors += 1;
        deps.log.error({ event: 'doctor.action_failed', err, ...problem }, `doctor could not remove ${problem.path}`);
      }
      continue;
    }
    if (problem.kind === 'tus_leftover') {
      if (!remedies.fix) continue;
      try {
        if (await removeTusLeftover(deps, problem)) record('removed', problem);
      } catch (err) {
        summary.actionErrors += 1;
        deps.log.error({ event: 'doctor.action_failed', err, ...problem }, `doctor could not remove ${what(problem)}`);
      }
      continue;
    }
    if (problem.kind === 'incomplete_upload') {
      if (!remedies.fix) continue;
      try {
        if (await abortIncompleteUpload(deps, problem)) record('aborted', problem);
      } catch (err) {
        summary.actionErrors += 1;
        deps.log.error({ event: 'doctor.action_failed', err, ...problem }, `doctor could not abort ${what(problem)}`);
      }
      continue;
    }
    try {
      if (RECORD_PROBLEMS.has(problem.kind) && problem.fileId && problem.status) {
        if (remedies.delete) {
          if (await deleteRecord(deps, problem)) record('deleted', problem);
        } else if (remedies.fix) {
          const marked = await markRecord(deps, problem);
          if (marked) record(marked, problem);
        }
      } else if (problem.kind === 'restorable' && remedies.fix) {
        if (await restoreRecord(deps, problem)) record('restored', problem);
      } else if (problem.kind === 'unmirrored' && remedies.fix) {
        if (await queueMirrorCopy(deps, problem)) record('mirror_queued', problem);
      } else if (problem.kind === 'orphan' && remedies.pruneOrphans) {
        if (await pruneOrphan(deps, scope, problem)) record('pruned', problem);
      }
    } catch (err) {
      summary.actionErrors += 1;
      deps.log.error({ event: 'doctor.action_failed', err, ...problem }, `doctor could not act on ${problem.fileId ?? problem.key}`);
    }
  }
}

/** Unless an upload that writes its key has begun since the check (keys are never reused; this is a guard). */
async function abortIncompleteUpload(deps: DoctorDeps, problem: IncompleteUploadProblem): Promise<boolean> {
  const store = deps.stores.find(problem.store);
  if (!store?.abortIncompleteUpload || (await deps.files.pendingKeys(problem.store, [problem.key])).size > 0) return false;
  await store.abortIncompleteUpload(problem);
  return true;
}

/** Judged again first (no record turns pending again; this is a guard), and found again, whole, in its place. */
async function removeTusLeftover(deps: DoctorDeps, problem: TusLeftoverProblem): Promise<boolean> {
  const place = deps.tusUploads;
  if (!place || !(await notInProgress(deps, [problem], new Date())).has(problem.fileId)) return false;
  for await (const page of place.list()) {
    const upload = page.find((u) => u.fileId === problem.fileId);
    if (!upload) continue;
    await place.remove(upload);
    return true;
  }
  return false;
}

/** Judged again first: its process may have turned out alive, or the file been removed, since the check. */
async function removeLeftoverProblem(deps: DoctorDeps, scope: DoctorScope, problem: LeftoverProblem): Promise<boolean> {
  const leftover = {
    kind: problem.kind === 'temp_leftover' ? ('temp' as const) : ('source' as const),
    path: problem.path,
    store: problem.store,
    bytes: problem.bytes,
    modifiedAt: new Date(problem.modifiedAt),
    writer: problem.writer,
    reason: problem.reason,
  };
  return removeLeftover(leftover, deps.instances, scope.graceMs);
}

/**
 * A gone blob gets the status and message every other path gives it (`missing`, as a download
 * finds it); bytes that no longer match and uploads that never finished are `failed`.
 */
const MARKS: Record<'missing' | 'corrupt' | 'stale_pending', { status: FileStatus; message: string; action: ActionKind }> = {
  missing: { status: 'missing', message: FILE_MISSING_MESSAGE, action: 'marked_missing' },
  corrupt: { status: 'failed', message: CORRUPT_MESSAGE, action: 'marked_failed' },
  stale_pending: { status: 'failed', message: UNFINISHED_MESSAGE, action: 'marked_failed' },
};

async function markRecord(deps: DoctorDeps, problem: FileProblem): Promise<ActionKind | undefined> {
  const { status, message, action } = MARKS[problem.kind as keyof typeof MARKS];
  // Through the file lifecycle, which tells the owner's webhooks.
  if (problem.kind === 'missing') return (await deps.files.markMissing(problem.fileId!, problem.status)) ? action : undefined;
  const result = await deps.db
    .updateTable('files')
    .set({ status, status_message: message, updated_at: new Date().toISOString() })
    .where('id', '=', problem.fileId!)
    .where('status', '=', problem.status!)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n ? action : undefined;
}

/** Through the file lifecycle, as the API deletes: record, blob, mirror copy. */
async function deleteRecord(deps: DoctorDeps, problem: FileProblem): Promise<boolean> {
  return deps.files.delete({ id: problem.fileId!, store: problem.store, key: problem.key }, deps.log, problem.status);
}

/** Copies the blob back from the mirror, verified against the record before the store publishes it. */
async function restoreRecord(deps: DoctorDeps, problem: FileProblem): Promise<boolean> {
  const target = deps.stores.find(problem.store);
  const current = await deps.db.selectFrom('files').selectAll().where('id', '=', problem.fileId!).where('status', '=', problem.status!).executeTakeFirst();
  if (!deps.mirror || !target || !current) return false;
  await copyVerified(deps.mirror, target, current);
  // A download that found the blob gone marked the record missing; its bytes are back.
  await deps.db
    .updateTable('files')
    .set({ status: 'ready', status_message: null, updated_at: new Date().toISOString() })
    .where('id', '=', current.id)
    .where('status', '=', 'missing')
    .execute();
  return true;
}

/**
 * Queues a mirror copy for a file still ready and unmirrored with no mirror task trying, checked
 * in the same transaction as the insert. The task itself is safe to run twice.
 */
async function queueMirrorCopy(deps: DoctorDeps, problem: FileProblem): Promise<boolean> {
  return deps.db.transaction().execute(async (tx) => {
    const file = await tx
      .selectFrom('files')
      .select(['id', 'owner', 'machine_id'])
      .where('id', '=', problem.fileId!)
      .where('status', '=', 'ready')
      .where('mirrored_at', 'is', null)
      .executeTakeFirst();
    if (!file) return false;
    const trying = await tx
      .selectFrom('tasks')
      .select('id')
      .where('kind', '=', MIRROR_TASK)
      .where('payload', '=', mirrorPayload(file.id))
      .where('status', 'in', ['queued', 'running'])
      .executeTakeFirst();
    if (trying) return false;
    await tx.insertInto('tasks').values(mirrorTaskRow(file)).execute();
    return true;
  });
}

async function pruneOrphan(deps: DoctorDeps, scope: DoctorScope, problem: FileProblem): Promise<boolean> {
  const store = deps.stores.find(problem.store);
  if (!store) return false;
  // A record may have appeared, or the key been rewritten, since the scan.
  if ((await keysWithRecords(deps, problem.store, [problem.key])).size > 0) return false;
  const info = await store.head(problem.key);
  if (!info || Date.now() - info.modifiedAt.getTime() < scope.graceMs) return false;
  await store.delete(problem.key);
  return true;
}
