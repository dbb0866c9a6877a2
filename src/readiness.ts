import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { CatalogDb } from './catalog/database';
import { type Instances, SILENT_AFTER_MS } from './catalog/instances';
import { every, type Periodic } from './housekeeping';
import type { Store } from './storage/store';

/** The database must answer `/readyz`'s query within this, well inside a platform check's timeout (Fly: 5 s). */
export const DATABASE_CHECK_TIMEOUT_MS = 2000;

export interface ReadinessReport {
  store: 'ok' | 'unavailable';
  /** When the store was last checked (the start-up probe, then the background check). */
  storeCheckedAt: Date;
  database: 'ok' | 'unavailable';
  /** `none`: no live worker can take this process's tasks; `unknown`: the database did not answer. */
  workers: 'ok' | 'none' | 'unknown';
  /** For the operator, when `workers` is `none`. */
  message?: string;
  /** Why each failed check failed, for the log (paths, hosts and driver errors are the operator's). */
  why: { store?: string; database?: string };
}

/** An error's message and its causes'. */
function causes(err: unknown): string {
  const parts: string[] = [];
  for (let e = err as { message?: unknown; cause?: unknown } | undefined; e && parts.length < 5; e = e.cause as typeof e) parts.push(String(e.message ?? e));
  return parts.join(': ');
}

function within<T>(ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/**
 * What `/readyz` answers from, cheaply enough for a platform check every few seconds on every
 * instance. The store was proven with a write probe at start-up (`proveStore`); from then on a
 * background check (`Store.check`: no object written to a bucket) refreshes the result every
 * STORE_CHECK_INTERVAL, and an answer reads the latest result without waiting for the store.
 * The database gets one query per answer, bounded by DATABASE_CHECK_TIMEOUT_MS, and the catalog's
 * registry of processes says whether a worker runs this process's tasks.
 */
export class Readiness {
  private storeCheck: { ok: boolean; at: Date; why?: string } = { ok: true, at: new Date() };
  private refresher?: Periodic;

  constructor(
    private readonly deps: {
      store: Store;
      db: CatalogDb;
      instances: Pick<Instances, 'workersFor'>;
      /** This process's Fly Machine with placement: workers must take the tasks pinned to it. */
      machineId: string | null;
      intervalMs: number;
      log: Logger;
    },
  ) {}

  /** Starts the background store check (the start-up probe counts as the first). */
  start(): void {
    this.refresher ??= every(this.deps.intervalMs, () => this.checkStore(), this.deps.log, 'store check', { immediately: false });
  }

  async stop(): Promise<void> {
    await this.refresher?.stop();
  }

  /** Checks the store now; a change of verdict is logged once. */
  async checkStore(): Promise<void> {
    const at = new Date();
    const why = await this.deps.store.check().then(
      () => undefined,
      (err: unknown) => causes(err),
    );
    const ok = why === undefined;
    if (!ok && this.storeCheck.ok) this.deps.log.warn({ store: why }, 'store check failed');
    if (ok && !this.storeCheck.ok) this.deps.log.info('store check passed again');
    this.storeCheck = { ok, at, why };
  }

  private noWorkerMessage(): string {
    const where = this.deps.machineId ? ` for this Fly Machine (${this.deps.machineId}), whose volume holds the files its tasks read` : '';
    return (
      `No task worker is running${where}: none has been seen in the last ${SILENT_AFTER_MS / 60_000} minutes, so reports and other tasks stay queued until one starts. ` +
      (this.deps.machineId ? 'Set WORKERS to 1 or more on this Machine.' : 'Run `stowage worker` on this catalog, or set WORKERS to 1 or more.')
    );
  }

  async report(): Promise<ReadinessReport> {
    const { db, instances, machineId } = this.deps;
    const [database, workers] = await Promise.allSettled([
      within(DATABASE_CHECK_TIMEOUT_MS, sql`select 1`.execute(db)),
      within(DATABASE_CHECK_TIMEOUT_MS, instances.workersFor(machineId)),
    ]);
    const store = this.storeCheck;
    const none = workers.status === 'fulfilled' && !workers.value;
    return {
      store: store.ok ? 'ok' : 'unavailable',
      storeCheckedAt: store.at,
      database: database.status === 'fulfilled' ? 'ok' : 'unavailable',
      workers: workers.status === 'rejected' ? 'unknown' : workers.value ? 'ok' : 'none',
      ...(none && { message: this.noWorkerMessage() }),
      why: { store: store.why, database: database.status === 'rejected' ? causes(database.reason) : undefined },
    };
  }
}
