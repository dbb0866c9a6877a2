import type { FileRecord } from '../catalog/files';
import type { FileStatus } from '../catalog/schema';

/** What the doctor found and did: the shape of `stowage doctor --json` and of its text output. */

export type ProblemKind =
  /** A ready (or already `missing`) record whose blob is not in its store. */
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
  | 'unmirrored';

export type FileProblemKind = Exclude<ProblemKind, 'stuck_task'>;

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

export type Problem = FileProblem | TaskProblem;

export type ActionKind = 'marked_failed' | 'deleted' | 'pruned' | 'restored' | 'mirror_queued';

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
  markedFailed: number;
  deleted: number;
  pruned: number;
  restored: number;
  mirrorQueued: number;
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
    markedFailed: 0,
    deleted: 0,
    pruned: 0,
    restored: 0,
    mirrorQueued: 0,
    actionErrors: 0,
  };
}

const COUNTERS: Record<ProblemKind, 'missing' | 'restorable' | 'corrupt' | 'orphans' | 'stalePending' | 'unreachable' | 'stuckTasks' | 'unmirrored'> = {
  missing: 'missing',
  restorable: 'restorable',
  corrupt: 'corrupt',
  orphan: 'orphans',
  stale_pending: 'stalePending',
  unreachable: 'unreachable',
  stuck_task: 'stuckTasks',
  unmirrored: 'unmirrored',
};

export function countProblem(summary: Summary, kind: ProblemKind): void {
  summary[COUNTERS[kind]] += 1;
}

const ACTION_COUNTERS: Record<ActionKind, 'markedFailed' | 'deleted' | 'pruned' | 'restored' | 'mirrorQueued'> = {
  marked_failed: 'markedFailed',
  deleted: 'deleted',
  pruned: 'pruned',
  restored: 'restored',
  mirror_queued: 'mirrorQueued',
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
    summary.unmirrored
  );
}
