import type { Selectable } from 'kysely';
import type { TaskStatus, TasksTable } from '../catalog/schema';

export interface TaskLogLine {
  at: string;
  message: string;
}

/** A task as the application sees it, JSON columns parsed. */
export interface Task {
  id: string;
  kind: string;
  owner: string;
  status: TaskStatus;
  progress: number;
  payload: unknown;
  log: TaskLogLine[];
  attempts: number;
  maxAttempts: number;
  runAfter: string;
  runningUntil: string | null;
  workerId: string | null;
  errorCode: string | null;
  errorMessage: string | null;
  outputFileIds: string[];
  /** The Fly Machine whose workers alone may run it (its input is on that Machine's volume). */
  machineId: string | null;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
}

export const FINISHED: readonly TaskStatus[] = ['succeeded', 'failed', 'cancelled'];

/** What a task carries (`waiting`) while it is due to run and no live worker can take it. */
export const NO_WORKER = 'no worker is running';
export type Waiting = typeof NO_WORKER;

export function toTask(row: Selectable<TasksTable>): Task {
  return {
    id: row.id,
    kind: row.kind,
    owner: row.owner,
    status: row.status,
    progress: Number(row.progress),
    payload: JSON.parse(row.payload),
    log: JSON.parse(row.log) as TaskLogLine[],
    attempts: Number(row.attempts),
    maxAttempts: Number(row.max_attempts),
    runAfter: row.run_after,
    runningUntil: row.running_until,
    workerId: row.worker_id,
    errorCode: row.error_code,
    errorMessage: row.error_message,
    outputFileIds: JSON.parse(row.output_file_ids) as string[],
    machineId: row.machine_id,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    finishedAt: row.finished_at,
  };
}

/**
 * Thrown by a task handler for a failure the user must act on (a corrupt source file...): the
 * task fails at once with this code and message, without retries.
 */
export class TaskFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TaskFailure';
  }
}

/**
 * Thrown by a task handler for an attempt that failed in a way it can tell the user (an endpoint
 * that answered 500): recorded with this code and message and tried again after `retryInMs`,
 * while attempts remain. The handler decides when to stop (a TaskFailure).
 */
export class TaskRetry extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryInMs: number,
  ) {
    super(message);
    this.name = 'TaskRetry';
  }
}
