import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { Transform, type Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { StoredBlob } from '../catalog/files';
import { isDatabaseUnavailable } from '../catalog/unavailable';
import { QuotaExceeded } from '../errors';
import type { BlobRef, Files } from '../files/files';
import type { TaskMetrics } from '../metrics/metrics';
import type { TaskQueue } from './queue';
import { type Task, TaskFailure, TaskRetry } from './task';

export interface TaskOutput extends StoredBlob, BlobRef {
  name: string;
}

export interface TaskContext {
  task: Task;
  /** Aborted when the task is cancelled, its lease is lost, or the worker hands it back. */
  signal: AbortSignal;
  /** Records progress (0-100) and optionally a line for the user; also extends the lease. */
  progress(percent: number, message?: string): Promise<void>;
  /**
   * Says the task is moving (bytes read or copied) without a new percentage, so it is not taken
   * for stalled (`stallMs`). Cheap: call it per chunk. Bytes written to an output count already.
   */
  working(): void;
  /**
   * Streams an output file into the store as a pending record of the task's owner. It becomes
   * ready only when the task succeeds; if the task fails or is cancelled it is removed.
   * `lifetimeMs`: how long it is kept once ready (unset: until deleted).
   */
  output(name: string, contentType: string, write: (out: Writable) => Promise<unknown>, options?: { lifetimeMs?: number }): Promise<TaskOutput>;
}

/** Does a task's work; resolves with an optional final line for the user. */
export type TaskHandler = (ctx: TaskContext) => Promise<string | void>;

export interface WorkerOptions {
  queue: TaskQueue;
  /** Outputs are stored, published (with the task's success) and discarded through it. */
  files: Files;
  log: Logger;
  handlers: Record<string, TaskHandler>;
  /** Durations and outcomes by kind, when this process exposes metrics. */
  metrics?: TaskMetrics;
  concurrency: number;
  leaseMs: number;
  /**
   * A task that shows no progress for this long (no `progress` or `working` call, no byte into an
   * output) is stopped and its lease no longer renewed: its attempt fails and is retried with
   * backoff, or another worker takes it once the lease runs out if it does not stop. Unset: never.
   */
  stallMs?: number;
  /** How often an idle worker looks for tasks queued by other processes. */
  pollMs?: number;
  /** First retry delay; doubles with each attempt. */
  retryBaseMs?: number;
  workerId?: string;
}

/** First and longest wait between tries to record a task's outcome while the database is unreachable. */
const RECORD_RETRY_MS = 500;
const RECORD_RETRY_MAX_MS = 10_000;

class HandedBack extends Error {}
class LeaseLost extends Error {}
class Stalled extends Error {}

/**
 * Runs tasks from the queue, `concurrency` at a time. In-process (`serve` with WORKERS=n) or in
 * its own process (`stowage worker`): the queue is in the database, so any number of workers
 * share it.
 */
export class Worker {
  readonly id: string;
  private stopping = false;
  /** Aborted when `stop`'s grace period is over: cuts short a wait to record an outcome again. */
  private readonly graceOver = new AbortController();
  private started = false;
  private readonly running = new Map<string, { controller: AbortController; done: Promise<void> }>();
  private slots: Promise<void>[] = [];
  private wake: (() => void)[] = [];
  private readonly onEnqueued = () => this.wakeAll();
  private readonly onCancelled = (id: string) => this.running.get(id)?.controller.abort(new LeaseLost('cancelled'));

  constructor(private readonly o: WorkerOptions) {
    this.id = o.workerId ?? `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  }

  start(): void {
    this.started = true;
    this.o.queue.events.on('enqueued', this.onEnqueued);
    this.o.queue.events.on('cancelled', this.onCancelled);
    // Until the listener is up (or if it can't be), polling still finds every task.
    this.o.queue.listen().catch((err: unknown) => this.o.log.warn({ err }, 'cannot listen for queue signals; polling only'));
    this.slots = Array.from({ length: this.o.concurrency }, () => this.loop());
    // Logged once recorded in the catalog, where other processes see that tasks will run; a
    // catalog that can't take it now gets it from the next heartbeat.
    void this.o.queue
      .workerSlots(this.o.concurrency)
      .catch((err: unknown) => this.o.log.warn({ err }, 'could not record this worker in the catalog; the heartbeat will retry'))
      .then(() => this.o.log.info({ workerId: this.id, concurrency: this.o.concurrency, kinds: Object.keys(this.o.handlers) }, 'worker started'));
  }

  /**
   * Stops claiming, gives running tasks `graceMs` to finish, then hands the rest back to the
   * queue (another worker picks them up at once, without waiting for the lease to run out).
   */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    this.o.queue.events.off('enqueued', this.onEnqueued);
    this.o.queue.events.off('cancelled', this.onCancelled);
    this.wakeAll();
    // Claims nothing from now on: other processes stop counting on it at once.
    const unrecorded = this.started && this.o.queue.workerSlots(-this.o.concurrency).catch((err: unknown) => this.o.log.warn({ err }, 'could not record in the catalog that this worker stops'));
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
    });
    await Promise.race([Promise.all(this.slots), grace]);
    clearTimeout(timer);
    this.graceOver.abort();
    for (const { controller } of this.running.values()) controller.abort(new HandedBack('worker stopping'));
    await Promise.all([...this.slots, unrecorded]);
    this.o.log.info({ workerId: this.id }, 'worker stopped');
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      let task: Task | undefined;
      try {
        task = await this.o.queue.claim(this.id, Object.keys(this.o.handlers), this.o.leaseMs);
      } catch (err) {
        this.o.log.error({ err }, 'claiming a task failed');
      }
      if (task) {
        // Recording the outcome can fail too (the catalog's disk full, a lost connection): the
        // slot lives on, and the task's lease runs out for another attempt.
        await this.run(task).catch((err: unknown) => this.o.log.error({ err, taskId: task.id }, 'recording a task outcome failed'));
      } else await this.idle();
    }
  }

  private idle(): Promise<void> {
    return new Promise((resolve) => {
      // Not unref'd: in `stowage worker` this timer is what keeps the process running.
      const timer = setTimeout(done, this.o.pollMs ?? 1000);
      const self = this;
      function done() {
        clearTimeout(timer);
        self.wake = self.wake.filter((w) => w !== done);
        resolve();
      }
      this.wake.push(done);
    });
  }

  private wakeAll(): void {
    for (const wake of [...this.wake]) wake();
  }

  private async run(task: Task): Promise<void> {
    const { queue, log } = this.o;
    const controller = new AbortController();
    const outputs: TaskOutput[] = [];
    const started = Date.now();
    let release!: () => void;
    this.running.set(task.id, { controller, done: new Promise((r) => (release = r)) });
    const taskLog = log.child({ taskId: task.id, kind: task.kind, attempt: task.attempts, workerId: this.id });
    taskLog.info('task started');

    const beat = async (update: { progress?: number; message?: string } = {}) => {
      if (controller.signal.aborted) throw controller.signal.reason;
      if (!(await queue.heartbeat(task, this.id, this.o.leaseMs, update))) {
        controller.abort(new LeaseLost('lease lost'));
        throw controller.signal.reason;
      }
    };
    const finished = (outcome: string) => this.o.metrics?.taskFinished(task.kind, outcome, (Date.now() - started) / 1000);
    let movedAt = Date.now();
    const working = () => {
      movedAt = Date.now();
    };
    const { stallMs } = this.o;
    // A lease renewed while nothing moves would hold a hung task (and its queue slot) for ever.
    const heartbeat = setInterval(() => {
      if (stallMs !== undefined && Date.now() - movedAt > stallMs && !controller.signal.aborted) {
        controller.abort(new Stalled(`The task made no progress for ${Math.round(stallMs / 1000)} s and was stopped.`));
      }
      beat().catch(() => undefined);
    }, Math.max(50, this.o.leaseMs / 3));

    const ctx: TaskContext = {
      task,
      signal: controller.signal,
      progress: (percent, message) => {
        working();
        return beat({ progress: percent, message });
      },
      working,
      output: (name, contentType, write, options) => this.output(task, outputs, controller.signal, working, name, contentType, write, options?.lifetimeMs),
    };
    try {
      await this.discardEarlierAttempt(task);
      const message = await this.o.handlers[task.kind](ctx);
      controller.signal.throwIfAborted();
      if (await this.record(() => queue.succeed(task, this.id, outputs, message || 'Done.'), taskLog)) {
        taskLog.info({ durationMs: Date.now() - started, outcome: 'succeeded', outputs: outputs.map((o) => o.id) }, 'task finished');
        finished('succeeded');
      } else {
        await this.discard(outputs);
        taskLog.warn({ outcome: 'lost' }, 'task was cancelled or reclaimed before it finished; outputs discarded');
        finished('lost');
      }
    } catch (err) {
      await this.discard(outputs);
      const reason = controller.signal.aborted ? controller.signal.reason : err;
      if (reason instanceof HandedBack) {
        await this.record(() => queue.release(task, this.id), taskLog);
        taskLog.info({ outcome: 'handed back' }, 'task handed back');
        finished('handed_back');
      } else if (reason instanceof LeaseLost) {
        taskLog.warn({ outcome: 'lost', reason: reason.message }, 'task stopped: cancelled or reclaimed');
        finished('lost');
      } else if (err instanceof TaskFailure || err instanceof QuotaExceeded) {
        // An output past the owner's quota: retrying can't make room.
        await this.record(() => queue.fail(task, this.id, { code: err.code, message: err.message }), taskLog);
        taskLog.info({ outcome: 'failed', code: err.code, durationMs: Date.now() - started }, err.message);
        finished('failed');
      } else if (err instanceof TaskRetry) {
        await this.record(() => queue.fail(task, this.id, { code: err.code, message: err.message, retryInMs: err.retryInMs }), taskLog);
        const outcome = task.attempts < task.maxAttempts ? 'retried' : 'failed';
        taskLog.warn({ outcome, code: err.code, retryInMs: err.retryInMs, durationMs: Date.now() - started }, err.message);
        finished(outcome);
      } else {
        const retryInMs = (this.o.retryBaseMs ?? 2000) * 2 ** (task.attempts - 1) * (0.75 + Math.random() / 2);
        const stalled = reason instanceof Stalled;
        await this.record(
          () =>
            queue.fail(task, this.id, {
              code: stalled ? 'task_stalled' : 'internal_error',
              message: stalled ? reason.message : 'Something went wrong on our side while running this task.',
              retryInMs: Math.min(retryInMs, 5 * 60_000),
            }),
          taskLog,
        );
        taskLog.error({ err, outcome: stalled ? 'stalled' : 'error', durationMs: Date.now() - started }, stalled ? reason.message : 'task attempt failed');
        finished(task.attempts < task.maxAttempts ? 'retried' : 'failed');
      }
    } finally {
      clearInterval(heartbeat);
      this.running.delete(task.id);
      release();
    }
  }

  /**
   * Records a task's outcome. While the database is unreachable the outcome is kept and the write
   * tried again with backoff, rather than lost with the slot. The lease may run out meanwhile and
   * the task run again elsewhere: every write is conditional on still holding it, so the task
   * ends once and its outputs stay single. A stopping worker tries until its grace period is
   * over, then once more, and gives up.
   */
  private async record<T>(write: () => Promise<T>, taskLog: Logger): Promise<T> {
    for (let waitMs = RECORD_RETRY_MS; ; waitMs = Math.min(2 * waitMs, RECORD_RETRY_MAX_MS)) {
      try {
        return await write();
      } catch (err) {
        if (!isDatabaseUnavailable(err) || this.graceOver.signal.aborted) throw err;
        taskLog.warn({ err, retryInMs: waitMs }, 'the database is unavailable: the task outcome is kept, to be recorded once it is back');
        await sleep(waitMs, undefined, { signal: this.graceOver.signal }).catch(() => undefined);
      }
    }
  }

  private async output(
    task: Task,
    outputs: TaskOutput[],
    signal: AbortSignal,
    working: () => void,
    name: string,
    contentType: string,
    write: (out: Writable) => Promise<unknown>,
    lifetimeMs?: number,
  ): Promise<TaskOutput> {
    // Bytes taken by the store are the task moving.
    const pipe = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        working();
        callback(null, chunk);
      },
    });
    let pending: TaskOutput | undefined;
    // The output's id is on the task before any byte is stored, so a later attempt can discard it.
    const noteOutput = async ({ id, store, key, name: clean }: { id: string; store: string; key: string; name: string }) => {
      pending = { id, store, key, name: clean, size: 0, sha256: '' };
      outputs.push(pending);
      await this.o.queue.recordOutputs(task, this.id, outputs.map((o) => o.id));
    };
    // Both settle before this returns or throws: a store that gave up (disk full) has removed its
    // temp file and pending record by then, so the task's failure is recorded with that space
    // back. The store's reason comes first: the writer only sees its pipe closed.
    const [stored, written] = await Promise.allSettled([
      this.o.files.store({ owner: task.owner, originalName: name, contentType, lifetimeMs }, pipe, { signal, onPending: noteOutput }),
      write(pipe).catch((err: unknown) => {
        pipe.destroy(err as Error);
        throw err;
      }),
    ]);
    if (stored.status === 'rejected') {
      // Files.store has removed its record, and a failed put leaves no blob: nothing to discard
      // (asking a stalled store to delete it would only wait out another timeout).
      if (pending) outputs.splice(outputs.indexOf(pending), 1);
      throw stored.reason;
    }
    if (written.status === 'rejected') throw written.reason;
    return Object.assign(pending!, { size: stored.value.size, sha256: stored.value.sha256 });
  }

  /**
   * A task claimed again after its worker died may carry the ids of outputs that attempt had
   * started: remove the ones that never became ready, so they don't linger as pending files.
   */
  private async discardEarlierAttempt(task: Task): Promise<void> {
    if (task.outputFileIds.length === 0) return;
    const leftovers = await this.o.files.getMany(task.owner, task.outputFileIds);
    await this.discard(leftovers.filter((f) => f.status === 'pending'));
    await this.o.queue.recordOutputs(task, this.id, []);
  }

  private async discard(outputs: BlobRef[]): Promise<void> {
    for (const o of outputs) await this.o.files.discard(o).catch(() => undefined);
  }
}
