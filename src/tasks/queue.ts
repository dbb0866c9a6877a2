import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { ExpressionBuilder, Kysely, Selectable } from 'kysely';
import { type CatalogDb, isPostgres } from '../catalog/database';
import { markFilesReady, type StoredBlob } from '../catalog/files';
import type { Database, TasksTable } from '../catalog/schema';
import { Conflict, NotFound } from '../errors';
import { decodeCursor, encodeCursor } from '../catalog/cursor';
import { compactPayload } from './compact-payload';
import { FINISHED, NO_WORKER, type Task, type TaskLogLine, toTask, type Waiting } from './task';
import type { QueueSignal, QueueWakeups, Subscription } from './wakeups';

/** Most log lines a task keeps; older ones are dropped so a row can't grow without bound. */
const MAX_LOG_LINES = 500;

const iso = (ms: number) => new Date(ms).toISOString();

export interface TaskPage {
  tasks: Task[];
  nextCursor?: string;
}

/** Claimable: queued and due, or running with a lease that ran out (its worker died). */
function claimable(now: string) {
  return (eb: ExpressionBuilder<Database, 'tasks'>) =>
    eb.or([
      eb.and([eb('status', '=', 'queued'), eb('run_after', '<=', now)]),
      eb.and([eb('status', '=', 'running'), eb('running_until', '<', now)]),
    ]);
}

/** Turns a task's pending outputs ready on the executor of the transaction that completes it. */
export type OutputPublisher = (db: Kysely<Database>, owner: string, outputs: StoredBlob[]) => Promise<unknown>;

/**
 * Runs in the transaction that records a task's final outcome (webhook events): it commits or
 * rolls back with the outcome.
 */
export type FinishHook = (
  db: Kysely<Database>,
  task: Task,
  outcome: { status: 'succeeded' | 'failed'; error?: { code: string; message: string }; outputFileIds?: string[] },
) => Promise<void>;

/** The catalog's record of which processes run workers (`catalog/instances.ts`). */
export interface WorkerRegistry {
  /** Records that this process runs `slots` task slots, for unpinned tasks and those pinned to `machineId`. */
  setTaskSlots(slots: number, machineId: string | null): Promise<void>;
  /** Whether a live process runs workers that can take a task pinned to `machineId` (null: unpinned). */
  workersFor(machineId: string | null): Promise<boolean>;
}

export interface TaskOptions {
  maxAttempts?: number;
  /** Pins the task to this Fly Machine's workers (its input is on that Machine's volume). */
  machineId?: string | null;
}

/**
 * A queued task's row. Inserted by `enqueue`, or by callers that queue a task inside their own
 * transaction (a file becoming ready queues its mirror copy); workers find those by polling.
 */
export function newTaskRow(kind: string, owner: string, payload: unknown, options: TaskOptions = {}): Selectable<TasksTable> {
  const now = iso(Date.now());
  return {
    id: randomBytes(16).toString('hex'),
    kind,
    owner,
    status: 'queued',
    progress: 0,
    payload: JSON.stringify(payload),
    log: JSON.stringify([{ at: now, message: 'Queued.' }]),
    attempts: 0,
    max_attempts: options.maxAttempts ?? 3,
    run_after: now,
    running_until: null,
    worker_id: null,
    error_code: null,
    error_message: null,
    output_file_ids: '[]',
    machine_id: options.machineId ?? null,
    created_at: now,
    updated_at: now,
    finished_at: null,
  };
}

/**
 * Durable tasks in the catalog database. Workers claim a task with a lease and extend it while
 * they work; every write a worker makes is conditional on still holding the lease, so a worker
 * that was presumed dead (and whose task was claimed again) can no longer change the task, and a
 * task completes exactly once. `events` tells in-process listeners about changes at once;
 * other processes see them by reading the table, and, given `wakeups` (LISTEN/NOTIFY on
 * PostgreSQL), hear about new work and cancellations at once too.
 */
export class TaskQueue {
  readonly events = new EventEmitter();
  private readonly locksRows: boolean;
  private subscription?: Promise<Subscription>;
  /** Task slots this process's workers run. */
  private taskSlots = 0;
  private slotsRecorded: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly db: CatalogDb,
    /** Publishes a task's outputs inside the transaction that records its success (`Files.publish`). */
    private readonly publishOutputs: OutputPublisher = markFilesReady,
    private readonly wakeups?: QueueWakeups,
    /** This process's Fly Machine: its workers also take tasks pinned to it, and no others' pinned ones. */
    private readonly machineId?: string,
    /** Where this process's workers are recorded, and other processes' looked up. */
    private readonly workers?: WorkerRegistry,
    /** Told of each task that succeeds or fails for good, in the transaction that records it. */
    private readonly onFinished?: FinishHook,
  ) {
    this.events.setMaxListeners(0);
    this.locksRows = isPostgres(db);
  }

  /** Starts relaying other processes' signals into `events` (for workers); idempotent. */
  async listen(): Promise<void> {
    if (!this.wakeups) return;
    this.subscription ??= this.wakeups.listen((signal) => this.emitLocally(signal));
    await this.subscription;
  }

  /** Stops listening for other processes' signals. */
  async close(): Promise<void> {
    const subscription = this.subscription;
    this.subscription = undefined;
    await (await subscription?.catch(() => undefined))?.close();
  }

  /** A worker of this process starts (`slots` > 0) or stops (`slots` < 0) running task slots; recorded at once. */
  async workerSlots(slots: number): Promise<void> {
    this.taskSlots += slots;
    const total = this.taskSlots;
    // In order: a worker that stops right after starting must not be recorded as running.
    const recorded = this.slotsRecorded.then(() => this.workers?.setTaskSlots(total, this.machineId ?? null));
    this.slotsRecorded = recorded.catch(() => undefined);
    await recorded;
  }

  /**
   * Why each of these tasks waits, by id: `NO_WORKER` for one that is due to run (queued, or
   * running on a lease that ran out) while no live worker can take it; absent for any other.
   */
  async waiting(tasks: Task[], now = Date.now()): Promise<Map<string, Waiting>> {
    const stalled = new Map<string, Waiting>();
    if (!this.workers) return stalled;
    const due = tasks.filter((t) => t.status === 'queued' || (t.status === 'running' && t.runningUntil !== null && t.runningUntil < iso(now)));
    const seen = new Map<string | null, Promise<boolean>>();
    for (const task of due) {
      if (!seen.has(task.machineId)) seen.set(task.machineId, this.workers.workersFor(task.machineId));
      if (!(await seen.get(task.machineId))) stalled.set(task.id, NO_WORKER);
    }
    return stalled;
  }

  async enqueue(kind: string, owner: string, payload: unknown, options: TaskOptions = {}): Promise<Task> {
    const row = newTaskRow(kind, owner, payload, options);
    await this.db.insertInto('tasks').values(row).execute();
    await this.announce({ type: 'enqueued', kind });
    this.changed(row.id);
    return toTask(row);
  }

  async get(owner: string, id: string): Promise<Task | undefined> {
    const row = await this.db.selectFrom('tasks').selectAll().where('id', '=', id).where('owner', '=', owner).executeTakeFirst();
    return row && toTask(row);
  }

  /** The owner's tasks, newest first: only those of `kind`, or all but those of `excludeKinds`. */
  async list(owner: string, { limit, cursor, kind, excludeKinds = [] }: { limit: number; cursor?: string; kind?: string; excludeKinds?: string[] }): Promise<TaskPage> {
    let query = this.db.selectFrom('tasks').selectAll().where('owner', '=', owner);
    if (kind !== undefined) query = query.where('kind', '=', kind);
    if (excludeKinds.length > 0) query = query.where('kind', 'not in', excludeKinds);
    if (cursor) {
      const { createdAt, id } = decodeCursor(cursor);
      query = query.where((eb) =>
        eb.or([eb('created_at', '<', createdAt), eb.and([eb('created_at', '=', createdAt), eb('id', '<', id)])]),
      );
    }
    const rows = await query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit + 1).execute();
    const tasks = rows.slice(0, limit).map(toTask);
    const last = tasks[tasks.length - 1];
    return {
      tasks,
      nextCursor: rows.length > limit ? encodeCursor(last) : undefined,
    };
  }

  /** Tasks waiting to run, by kind (for metrics). */
  async depthByKind(): Promise<Record<string, number>> {
    const rows = await this.db
      .selectFrom('tasks')
      .select(['kind', (eb) => eb.fn.countAll<number>().as('n')])
      .where('status', '=', 'queued')
      .groupBy('kind')
      .execute();
    return Object.fromEntries(rows.map((r) => [r.kind, Number(r.n)]));
  }

  /**
   * Takes the oldest claimable task of one of `kinds` for `workerId`, or undefined. The update
   * repeats the claim condition, so of two workers racing for one task exactly one gets it. On
   * PostgreSQL the candidate is also locked `FOR UPDATE SKIP LOCKED`, so racing workers take
   * different tasks instead of colliding on the oldest one (SQLite has one writer at a time and
   * no row locks; there the conditional update alone decides). A task whose lease ran out on
   * its last attempt is failed instead of being run again.
   */
  async claim(workerId: string, kinds: string[], leaseMs: number): Promise<Task | undefined> {
    for (let tries = 0; tries < 5; tries++) {
      const outcome = this.locksRows
        ? await this.db.transaction().execute((trx) => this.claimOnce(trx, workerId, kinds, leaseMs))
        : await this.claimOnce(this.db, workerId, kinds, leaseMs);
      if (outcome === 'none') return undefined;
      if (outcome !== 'retry') {
        this.changed(outcome.id);
        return outcome;
      }
    }
    return undefined;
  }

  private async claimOnce(db: CatalogDb, workerId: string, kinds: string[], leaseMs: number): Promise<Task | 'none' | 'retry'> {
    const nowMs = Date.now();
    const now = iso(nowMs);
    const candidate = await db
      .selectFrom('tasks')
      .select(['id', 'status', 'attempts', 'max_attempts', 'payload'])
      .where('kind', 'in', kinds)
      .where(claimable(now))
      .where((eb) => (this.machineId ? eb.or([eb('machine_id', 'is', null), eb('machine_id', '=', this.machineId)]) : eb('machine_id', 'is', null)))
      .orderBy('run_after')
      .limit(1)
      .$if(this.locksRows, (q) => q.forUpdate().skipLocked())
      .executeTakeFirst();
    if (!candidate) return 'none';
    if (candidate.status === 'running' && Number(candidate.attempts) >= Number(candidate.max_attempts)) {
      const error = { code: 'worker_lost', message: 'The task was interrupted too many times and was given up.' };
      await this.inTransaction(db, async (trx) => {
        const result = await trx
          .updateTable('tasks')
          .set({
            status: 'failed',
            payload: compactPayload(JSON.parse(candidate.payload)),
            error_code: error.code,
            error_message: error.message,
            running_until: null,
            finished_at: now,
            updated_at: now,
          })
          .where('id', '=', candidate.id)
          .where(claimable(now))
          .executeTakeFirst();
        if (result.numUpdatedRows === 1n && this.onFinished) {
          const row = await trx.selectFrom('tasks').selectAll().where('id', '=', candidate.id).executeTakeFirstOrThrow();
          await this.onFinished(trx, toTask(row), { status: 'failed', error });
        }
      });
      this.changed(candidate.id);
      return 'retry';
    }
    const result = await db
      .updateTable('tasks')
      .set((eb) => ({
        status: 'running',
        attempts: eb('attempts', '+', 1),
        running_until: iso(nowMs + leaseMs),
        worker_id: workerId,
        updated_at: now,
      }))
      .where('id', '=', candidate.id)
      .where(claimable(now))
      .executeTakeFirst();
    if (result.numUpdatedRows !== 1n) return 'retry';
    return toTask(await db.selectFrom('tasks').selectAll().where('id', '=', candidate.id).executeTakeFirstOrThrow());
  }

  /** Extends the lease and records progress; false when this worker no longer holds the task. */
  async heartbeat(task: Task, workerId: string, leaseMs: number, update: { progress?: number; message?: string } = {}): Promise<boolean> {
    const now = Date.now();
    const log = update.message ? this.appendLog(task, update.message, now) : undefined;
    const result = await this.db
      .updateTable('tasks')
      .set({
        running_until: iso(now + leaseMs),
        updated_at: iso(now),
        ...(update.progress !== undefined && { progress: Math.max(0, Math.min(100, Math.round(update.progress))) }),
        ...(log && { log: JSON.stringify(log) }),
      })
      .where('id', '=', task.id)
      .where('worker_id', '=', workerId)
      .where('status', '=', 'running')
      .executeTakeFirst();
    if (result.numUpdatedRows !== 1n) return false;
    if (log) task.log = log;
    this.changed(task.id);
    return true;
  }

  /**
   * Records the outputs an attempt has started, so that if its worker dies the attempt that
   * reclaims the task can remove them. False when this worker no longer holds the task.
   */
  async recordOutputs(task: Task, workerId: string, fileIds: string[]): Promise<boolean> {
    const result = await this.db
      .updateTable('tasks')
      .set({ output_file_ids: JSON.stringify(fileIds) })
      .where('id', '=', task.id)
      .where('worker_id', '=', workerId)
      .where('status', '=', 'running')
      .executeTakeFirst();
    return result.numUpdatedRows === 1n;
  }

  /**
   * Completes the task and makes its outputs ready in one transaction, only if this worker still
   * holds it. False means the outputs were not published (the task was cancelled or reclaimed).
   * Idempotent for its worker: called again after a commit whose answer was lost, it is true.
   */
  async succeed(task: Task, workerId: string, outputs: StoredBlob[], message = 'Done.'): Promise<boolean> {
    const now = iso(Date.now());
    const outputIds = JSON.stringify(outputs.map((o) => o.id));
    const done = await this.db.transaction().execute(async (trx) => {
      const result = await trx
        .updateTable('tasks')
        .set({
          status: 'succeeded',
          progress: 100,
          running_until: null,
          log: JSON.stringify(this.appendLog(task, message, Date.now())),
          output_file_ids: outputIds,
          payload: compactPayload(task.payload),
          finished_at: now,
          updated_at: now,
        })
        .where('id', '=', task.id)
        .where('worker_id', '=', workerId)
        .where('status', '=', 'running')
        .executeTakeFirst();
      if (result.numUpdatedRows !== 1n) {
        // Already done, by this very call tried again after the answer to its commit was lost
        // (the connection dropped): the same worker with the same outputs. Anything else is not
        // this attempt's success.
        const row = await trx.selectFrom('tasks').select(['status', 'worker_id', 'output_file_ids']).where('id', '=', task.id).executeTakeFirst();
        return row?.status === 'succeeded' && row.worker_id === workerId && row.output_file_ids === outputIds;
      }
      await this.publishOutputs(trx, task.owner, outputs);
      await this.onFinished?.(trx, task, { status: 'succeeded', outputFileIds: outputs.map((o) => o.id) });
      return true;
    });
    if (done) this.changed(task.id);
    return done;
  }

  /**
   * Records a failure: retried after `retryInMs` while attempts remain, otherwise final.
   * Pass `retryInMs: undefined` for a failure that retrying can't fix.
   */
  async fail(task: Task, workerId: string, error: { code: string; message: string; retryInMs?: number }): Promise<void> {
    const nowMs = Date.now();
    const now = iso(nowMs);
    const retry = error.retryInMs !== undefined && task.attempts < task.maxAttempts;
    const line = retry ? `Attempt ${task.attempts} failed: ${error.message} Retrying.` : `Failed: ${error.message}`;
    await this.inTransaction(this.db, async (trx) => {
      const result = await trx
        .updateTable('tasks')
        .set({
          status: retry ? 'queued' : 'failed',
          payload: retry ? JSON.stringify(task.payload) : compactPayload(task.payload),
          run_after: retry ? iso(nowMs + error.retryInMs!) : task.runAfter,
          running_until: null,
          worker_id: null,
          error_code: error.code,
          error_message: error.message,
          output_file_ids: '[]',
          log: JSON.stringify(this.appendLog(task, line, nowMs)),
          finished_at: retry ? null : now,
          updated_at: now,
        })
        .where('id', '=', task.id)
        .where('worker_id', '=', workerId)
        .where('status', '=', 'running')
        .executeTakeFirst();
      if (!retry && result.numUpdatedRows === 1n) await this.onFinished?.(trx, task, { status: 'failed', error: { code: error.code, message: error.message } });
    });
    if (retry) await this.announce({ type: 'enqueued', kind: task.kind });
    this.changed(task.id);
  }

  /** Hands a task back unfinished (worker shutting down); the attempt is not counted. */
  async release(task: Task, workerId: string): Promise<void> {
    const now = Date.now();
    await this.db
      .updateTable('tasks')
      .set((eb) => ({
        status: 'queued',
        attempts: eb('attempts', '-', 1),
        running_until: null,
        worker_id: null,
        output_file_ids: '[]',
        log: JSON.stringify(this.appendLog(task, 'Handed back by a worker that is shutting down.', now)),
        updated_at: iso(now),
      }))
      .where('id', '=', task.id)
      .where('worker_id', '=', workerId)
      .where('status', '=', 'running')
      .execute();
    await this.announce({ type: 'enqueued', kind: task.kind });
    this.changed(task.id);
  }

  /** Deletes tasks that finished before `before` (TASK_RETENTION); their output files stay. Returns how many. */
  async pruneFinished(before: Date, limit = 1000): Promise<number> {
    const old = this.db
      .selectFrom('tasks')
      .select('id')
      .where('status', 'in', FINISHED)
      .where('finished_at', '<', before.toISOString())
      .limit(limit);
    const result = await this.db.deleteFrom('tasks').where('id', 'in', old).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

    /** Cancels a queued or running task; a running one stops at its worker's next heartbeat. */
  async cancel(owner: string, id: string): Promise<Task> {
    const task = await this.get(owner, id);
    if (!task) throw new NotFound('No task with that id.');
    if (FINISHED.includes(task.status)) throw new Conflict(`The task has already ${task.status}.`, 'task_finished');
    const now = Date.now();
    const result = await this.db
      .updateTable('tasks')
      .set({
        status: 'cancelled',
        payload: compactPayload(task.payload),
        running_until: null,
        log: JSON.stringify(this.appendLog(task, 'Cancelled.', now)),
        finished_at: iso(now),
        updated_at: iso(now),
      })
      .where('id', '=', id)
      .where('owner', '=', owner)
      .where('status', 'in', ['queued', 'running'])
      .executeTakeFirst();
    if (result.numUpdatedRows !== 1n) return this.cancel(owner, id);
    this.changed(id);
    await this.announce({ type: 'cancelled', id });
    return (await this.get(owner, id))!;
  }

  /** Runs `fn` in `db`'s transaction, or in a new one; without a finish hook there is one statement, and no transaction is needed. */
  private async inTransaction(db: Kysely<Database>, fn: (trx: Kysely<Database>) => Promise<void>): Promise<void> {
    if (!this.onFinished || db.isTransaction) return fn(db);
    await db.transaction().execute(fn);
  }

  private appendLog(task: Task, message: string, at: number): TaskLogLine[] {
    return [...task.log, { at: iso(at), message }].slice(-MAX_LOG_LINES);
  }

  /**
   * Tells this process's listeners, then other processes. A failed NOTIFY is not the caller's
   * failure (the change is committed): other workers still see it at their next poll.
   */
  private async announce(signal: QueueSignal): Promise<void> {
    this.emitLocally(signal);
    await this.wakeups?.publish(signal).catch(() => undefined);
  }

  private emitLocally(signal: QueueSignal): void {
    if (signal.type === 'enqueued') this.events.emit('enqueued', signal.kind);
    else this.events.emit('cancelled', signal.id);
  }

  private changed(id: string): void {
    this.events.emit('changed', id);
  }
}
