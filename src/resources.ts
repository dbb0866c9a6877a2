import type { Logger } from 'pino';
import { type CatalogDb, isPostgres, openDatabase } from './catalog/database';
import { FileCatalog } from './catalog/files';
import { migrateToLatest } from './catalog/migrations';
import type { Config } from './config';
import type { DoctorDeps } from './doctor/context';
import { DEFAULT_GRACE_MS } from './doctor/context';
import { PeriodicDoctor } from './doctor/periodic';
import { ApiKeys } from './auth/api-keys';
import { Authenticator } from './auth/authenticator';
import { JwtVerifier } from './auth/jwt';
import { Files } from './files/files';
import type { ServiceMetrics, TaskMetrics } from './metrics/metrics';
import { MIRROR_TASK, mirrorOnReady } from './mirror/enqueue';
import { mirrorHandler } from './mirror/handler';
import { ReportThreads } from './reports/thread-pool';
import type { Store } from './storage/store';
import type { StoreSet } from './storage/store-set';
import { openStores } from './storage/open-stores';
import { postgresWakeups } from './tasks/pg-wakeups';
import { TaskQueue } from './tasks/queue';
import { REPORT_TASK, reportHandler } from './tasks/report-task';
import { type TaskHandler, Worker } from './tasks/worker';
import { DirectUploads } from './uploads/direct-upload';

/**
 * The composition root: every long-lived object of a process (server, worker, CLI command) is
 * built here, once, and passed to whatever needs it.
 */
export interface Resources {
  /** Where new blobs go. */
  store: Store;
  /** Every store a record may point at. */
  stores: StoreSet;
  db: CatalogDb;
  catalog: FileCatalog;
  /** The lifecycle of a file: store, publish, discard, delete, open. */
  files: Files;
  queue: TaskQueue;
  directUploads: DirectUploads;
  /** Every kind of task this process can run, by kind. */
  handlers: Record<string, TaskHandler>;
  /** The threads reports are built in (started when a report runs). */
  reportThreads: ReportThreads;
  keys: ApiKeys;
  /** Who a request comes from (keys, JWTs, sessions, dev mode). */
  authenticator: Authenticator;
  /** Closes the queue's listener, the stores and the database. */
  close(): Promise<void>;
}

/** Opens the stores and the catalog, proving both usable, runs pending migrations, and builds the services. */
export async function openResources(config: Config, log: Logger): Promise<Resources> {
  const stores = await openStores(config.storage);
  const db = openDatabase(config.database, (err) => log.warn({ err }, 'idle database connection lost'));
  try {
    const { applied } = await migrateToLatest(db);
    if (applied.length) log.info({ applied }, 'database migrated');
  } catch (err) {
    await db.destroy();
    await stores.close();
    throw err;
  }
  const settings = config.database;
  const wakeups = settings.kind === 'postgres' && isPostgres(db) ? postgresWakeups(db, settings, log) : undefined;
  const catalog = new FileCatalog(db, config.placement);
  const files = new Files({ db, catalog, stores, onReady: mirrorOnReady(stores), placement: config.placement });
  const queue = new TaskQueue(db, (trx, owner, outputs) => files.publish(owner, outputs, trx), wakeups, config.placement?.machineId);
  const reportThreads = new ReportThreads({ maxHeapMb: config.reports.threadMaxHeapMb, maxOutputBytes: config.reports.maxOutputBytes });
  const handlers: Record<string, TaskHandler> = {
    [REPORT_TASK]: reportHandler({ files, threads: reportThreads, sourceLimits: config.reports.source, tempDir: config.reports.tempDir, log }),
    ...(stores.mirror && { [MIRROR_TASK]: mirrorHandler({ stores, catalog, log }) }),
  };
  const keys = new ApiKeys(db);
  const { auth } = config;
  const authenticator = new Authenticator({
    keys,
    jwt: auth.jwt && new JwtVerifier(auth.jwt),
    metricsToken: config.metricsToken,
    devMode: auth.loopback && !auth.jwt && !(await keys.anyActive()),
  });
  const directUploads = new DirectUploads({ uploads: config.uploads, directUploads: config.directUploads, stores, files, log });
  const close = async () => {
    await reportThreads.close();
    await queue.close();
    await stores.close();
    await db.destroy();
  };
  return { store: stores.primary, stores, db, catalog, files, queue, directUploads, handlers, reportThreads, keys, authenticator, close };
}

/** A worker over the given resources, or undefined when there are no slots to run. */
export function createWorker(resources: Resources, config: Config, log: Logger, concurrency: number, metrics?: TaskMetrics): Worker | undefined {
  const { files, queue, handlers } = resources;
  if (concurrency < 1 || Object.keys(handlers).length === 0) return undefined;
  return new Worker({ queue, files, log, handlers, metrics, concurrency, leaseMs: config.tasks.leaseMs });
}

/** What the doctor checks with: every store the server reads from, so no record's store is unknown to it. */
export function doctorDeps(resources: Resources, config: Config, log: Logger): DoctorDeps {
  const { db, stores, files } = resources;
  return { db, stores, mirror: stores.mirror, files, placement: config.placement, log };
}

/** The periodic doctor (`DOCTOR_INTERVAL`), or undefined when it is off. */
export function createPeriodicDoctor(resources: Resources, config: Config, log: Logger, metrics?: ServiceMetrics): PeriodicDoctor | undefined {
  if (!config.doctorIntervalMs) return undefined;
  return new PeriodicDoctor(doctorDeps(resources, config, log), {
    intervalMs: config.doctorIntervalMs,
    graceMs: DEFAULT_GRACE_MS,
    onReport: (r) => metrics?.doctorRun(r),
  });
}
