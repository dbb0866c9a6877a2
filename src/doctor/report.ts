import type { FileRecord } from '../catalog/files';
import type { FileStatus } from '../catalog/schema';

/** What the doctor found and did: the shape of `stowage doctor --json` and of its text output. */

export type ProblemKind =
  /** A ready record whose blob is not in its store (one already marked `missing` is not reported again). */
  | 'missing'
  /** Like missing, but the STORAGE_MIRROR store holds a full copy: a download or --fix restores it. */
  | 'restorable'
  /** A record whose blob has a different size, or with --verify a different sha256. */
  | 'corrupt'
  /** A blob no record points at, older than the grace period. */
  | 'orphan'
  /** An upload still `pending` past the grace period: its process died mid-upload. */
  | 'stale_pending'
  /** The record's store is not configured here or failed to answer: checked again next run. */
  | 'unreachable'
  /** A task queued or running long past its deadline: no worker is taking tasks. */
  | 'stuck_task'
  /** With STORAGE_MIRROR: a ready file with no copy in the mirror and no mirror task trying. */
  | 'unmirrored'
  /** A temp file in a store's `.tmp` left by a process that is no longer running (killed mid-upload). */
  | 'temp_leftover'
  /** A copy of a report's source (a work directory) left by a process that is no longer running. */
  | 'source_leftover'
  /** An object store's multipart upload that nothing will complete: its parts are kept (and billed) until aborted. */
  | 'incomplete_upload'
  /** What a resumable (tus) upload left in its store (`.tus/`) that nothing will resume or finish. */
  | 'tus_leftover'
  /** A webhook delivery that kept failing until WEBHOOK_GIVE_UP: its event never reached the endpoint. */
  | 'webhook_given_up';

export type LeftoverProblemKind = 'temp_leftover' | 'source_leftover';
export type FileProblemKind = Exclude<ProblemKind, 'stuck_task' | LeftoverProblemKind | 'incomplete_upload' | 'tus_leftover' | 'webhook_given_up'>;

export interface FileProblem {
  kind: FileProblemKind;
  /** Absent for orphans: a blob without a record has no owner. */
  owner?: string;
  fileId?: string;
  name?: string;
  /** The record's status when checked; actions only touch records still in that state. */
  status?: FileStatus;
  store: string;
  key: string;
  reason: string;
}

/** A problem with a record, carrying what the report and the actions need from it. */
export function recordProblem(kind: FileProblemKind, record: FileRecord, reason: string): FileProblem {
  return { kind, owner: record.owner, fileId: record.id, name: record.name, status: record.status, store: record.store, key: record.key, reason };
}

export interface TaskProblem {
  kind: 'stuck_task';
  owner: string;
  taskId: string;
  taskKind: string;
  status: 'queued' | 'running';
  reason: string;
}

/** Scratch files a dead process left: no record, no owner; `--fix` removes them. */
export interface LeftoverProblem {
  kind: LeftoverProblemKind;
  /** The temp file, or the work directory holding the source copy. */
  path: string;
  /** For a temp file: the store whose `.tmp` holds it. */
  store?: string;
  bytes: number;
  /** ISO time it was last written. */
  modifiedAt: string;
  /** The process it is named after. */
  writer?: string;
  reason: string;
}

/** An incomplete multipart upload past the grace period that no upload in progress writes; `--fix` aborts it. */
export interface IncompleteUploadProblem {
  kind: 'incomplete_upload';
  store: string;
  /** The store key it was writing. */
  key: string;
  uploadId: string;
  /** ISO time it began. */
  startedAt: string;
  /** What its parts hold. */
  bytes: number;
  reason: string;
}

/** A resumable upload's bytes and info with no upload in progress behind them; `--fix` removes them. */
export interface TusLeftoverProblem {
  kind: 'tus_leftover';
  store: string;
  /** Where it is in the store: `.tus/<file id>` (under STORAGE_PATH, or the bucket's prefix). */
  key: string;
  /** The file it was to become. */
  fileId: string;
  bytes: number;
  /** ISO time it was last written. */
  modifiedAt: string;
  reason: string;
}

/** A webhook delivery given up; reported until TASK_RETENTION removes it (nothing to fix: the endpoint's owner decides). */
export interface WebhookProblem {
  kind: 'webhook_given_up';
  owner: string;
  deliveryId: string;
  /** The event type, e.g. `file.ready`. */
  type: string;
  /** `default` (WEBHOOK_URL) or an endpoint id. */
  endpoint: string;
  reason: string;
}

export type Problem = FileProblem | TaskProblem | LeftoverProblem | IncompleteUploadProblem | TusLeftoverProblem | WebhookProblem;

export function isLeftover(problem: Problem): problem is LeftoverProblem {
  return problem.kind === 'temp_leftover' || problem.kind === 'source_leftover';
}

export type ActionKind = 'marked_missing' | 'marked_failed' | 'deleted' | 'pruned' | 'restored' | 'mirror_queued' | 'removed' | 'aborted';

export interface Action {
  action: ActionKind;
  problem: Problem;
}

export interface Summary {
  recordsChecked: number;
  blobsListed: number;
  missing: number;
  restorable: number;
  corrupt: number;
  orphans: number;
  stalePending: number;
  unreachable: number;
  stuckTasks: number;
  unmirrored: number;
  tempLeftovers: number;
  sourceLeftovers: number;
  /** Bytes held by those leftovers. */
  leftoverBytes: number;
  incompleteUploads: number;
  /** Bytes held by the parts of those uploads. */
  incompleteUploadBytes: number;
  tusLeftovers: number;
  /** Bytes those hold. */
  tusLeftoverBytes: number;
  webhooksGivenUp: number;
  markedMissing: number;
  markedFailed: number;
  deleted: number;
  pruned: number;
  restored: number;
  mirrorQueued: number;
  /** Leftovers (of dead processes and of resumable uploads) removed. */
  removed: number;
  /** Incomplete uploads aborted. */
  aborted: number;
  /** Actions that failed (logged with the error); they leave the problem for the next run. */
  actionErrors: number;
}

export interface DoctorReport {
  startedAt: string;
  finishedAt: string;
  problems: Problem[];
  actions: Action[];
  summary: Summary;
  /** True when the orphan scan was skipped (an --owner filter: orphans have no owner). */
  orphansSkipped: boolean;
  /** Why incomplete multipart uploads were not checked (the store's keys lack a permission); absent when they were. */
  incompleteUploadsUnchecked?: string;
}

export function emptySummary(): Summary {
  return {
    recordsChecked: 0,
    blobsListed: 0,
    missing: 0,
    restorable: 0,
    corrupt: 0,
    orphans: 0,
    stalePending: 0,
    unreachable: 0,
    stuckTasks: 0,
    unmirrored: 0,
    tempLeftovers: 0,
    sourceLeftovers: 0,
    leftoverBytes: 0,
    incompleteUploads: 0,
    incompleteUploadBytes: 0,
    tusLeftovers: 0,
    tusLeftoverBytes: 0,
    webhooksGivenUp: 0,
    markedMissing: 0,
    markedFailed: 0,
    deleted: 0,
    pruned: 0,
    restored: 0,
    mirrorQueued: 0,
    removed: 0,
    aborted: 0,
    actionErrors: 0,
  };
}

const COUNTERS: Record<
  ProblemKind,
  | 'missing'
  | 'restorable'
  | 'corrupt'
  | 'orphans'
  | 'stalePending'
  | 'unreachable'
  | 'stuckTasks'
  | 'unmirrored'
  | 'tempLeftovers'
  | 'sourceLeftovers'
  | 'incompleteUploads'
  | 'tusLeftovers'
  | 'webhooksGivenUp'
> = {
  missing: 'missing',
  restorable: 'restorable',
  corrupt: 'corrupt',
  orphan: 'orphans',
  stale_pending: 'stalePending',
  unreachable: 'unreachable',
  stuck_task: 'stuckTasks',
  unmirrored: 'unmirrored',
  temp_leftover: 'tempLeftovers',
  source_leftover: 'sourceLeftovers',
  incomplete_upload: 'incompleteUploads',
  tus_leftover: 'tusLeftovers',
  webhook_given_up: 'webhooksGivenUp',
};

export function countProblem(summary: Summary, problem: Problem): void {
  summary[COUNTERS[problem.kind]] += 1;
  if (isLeftover(problem)) summary.leftoverBytes += problem.bytes;
  if (problem.kind === 'incomplete_upload') summary.incompleteUploadBytes += problem.bytes;
  if (problem.kind === 'tus_leftover') summary.tusLeftoverBytes += problem.bytes;
}

const ACTION_COUNTERS: Record<ActionKind, 'markedMissing' | 'markedFailed' | 'deleted' | 'pruned' | 'restored' | 'mirrorQueued' | 'removed' | 'aborted'> = {
  marked_missing: 'markedMissing',
  marked_failed: 'markedFailed',
  deleted: 'deleted',
  pruned: 'pruned',
  restored: 'restored',
  mirror_queued: 'mirrorQueued',
  removed: 'removed',
  aborted: 'aborted',
};

export function countAction(summary: Summary, action: ActionKind): void {
  summary[ACTION_COUNTERS[action]] += 1;
}

export function problemCount(summary: Summary): number {
  return (
    summary.missing +
    summary.restorable +
    summary.corrupt +
    summary.orphans +
    summary.stalePending +
    summary.unreachable +
    summary.stuckTasks +
    summary.unmirrored +
    summary.tempLeftovers +
    summary.sourceLeftovers +
    summary.incompleteUploads +
    summary.tusLeftovers +
    summary.webhooksGivenUp
  );
}
