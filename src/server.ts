import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { createApp } from './app';
import { type CatalogDb, isPostgres, openDatabase } from './catalog/database';
import { FileCatalog } from './catalog/files';
import { migrateToLatest } from './catalog/migrations';
import type { Config } from './config';
import { describeDatabase } from './catalog/database-settings';
import { openStores } from './storage/open-stores';
import { DEFAULT_GRACE_MS } from './doctor/context';
import { PeriodicDoctor } from './doctor/periodic';
import { storeMap } from './doctor/stores';
import { ServiceMetrics, type TaskMetrics } from './metrics/metrics';
import type { Store } from './storage/store';
import type { StoreSet } from './storage/store-set';
import { mirrorOnReady } from './mirror/enqueue';
import { taskHandlers } from './tasks/handlers';
import { postgresWakeups } from './tasks/pg-wakeups';
import { TaskQueue } from './tasks/queue';
import { Worker } from './tasks/worker';
import { startPendingUploadSweeper } from './uploads/pending-sweeper';

export interface RunningServer {
  port: number;
  /** Stops accepting, lets in-flight requests finish within the grace period, closes the rest. */
  stop(): Promise<void>;
}

export interface Resources {
  /** Where new blobs go. */
  store: Store;
  /** Every store a record may point at. */
  stores: StoreSet;
  db: CatalogDb;
  catalog: FileCatalog;
  queue: TaskQueue;
  /** Closes the queue's listener, the stores and the database. */
  close(): Promise<void>;
}

/** Opens the stores and the catalog, proving both usable, and runs pending migrations. */
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
  const onReady = mirrorOnReady(stores);
  const queue = new TaskQueue(db, onReady, wakeups, config.placement?.machineId);
  const close = async () => {
    await queue.close();
    await stores.close();
    await db.destroy();
  };
  return { store: stores.primary, stores, db, catalog: new FileCatalog(db, onReady, config.placement), queue, close };
}

/** A worker over the given resources, or undefined when there are no slots to run. */
export function createWorker(
  resources: Resources,
  config: Config,
  log: Logger,
  concurrency: number,
  metrics?: TaskMetrics,
): Worker | undefined {
  const { store, stores, catalog, queue } = resources;
  const handlers = taskHandlers({ store, stores, catalog, log, config });
  if (concurrency < 1 || Object.keys(handlers).length === 0) return undefined;
  return new Worker({ queue, catalog, store, log, handlers, metrics, concurrency, leaseMs: config.tasks.leaseMs });
}

/** The periodic doctor (`DOCTOR_INTERVAL`), or undefined when it is off. */
export function createPeriodicDoctor(resources: Resources, config: Config, log: Logger, metrics?: ServiceMetrics): PeriodicDoctor | undefined {
  if (!config.doctorIntervalMs) return undefined;
  return new PeriodicDoctor(
    { db: resources.db, stores: storeMap(...resources.stores.all()), mirror: resources.stores.mirror, placement: config.placement, log },
    { intervalMs: config.doctorIntervalMs, graceMs: DEFAULT_GRACE_MS, onReport: (r) => metrics?.doctorRun(r) },
  );
}

export async function startServer(config: Config, log: Logger): Promise<RunningServer> {
  const resources = await openResources(config, log);
  const { store, stores, db, queue } = resources;
  const metrics = new ServiceMetrics();
  const worker = createWorker(resources, config, log, config.tasks.inProcessWorkers, metrics);
  const app = createApp({ config, store, stores, db, queue, log, metrics });
  // The periodic doctor goes with the workers: here when they run in-process.
  const doctor = worker && createPeriodicDoctor(resources, config, log, metrics);
  const server = http.createServer(app);
  // Large uploads on slow links can take longer than Node's 5-minute default.
  server.requestTimeout = 0;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  log.info({ port, host: config.host, storage: store.driver, location: store.location, database: describeDatabase(config.database) }, 'listening');
  worker?.start();
  const sweeper = startPendingUploadSweeper({ db, stores, log, intervalMs: config.directUploads.sweepIntervalMs });
  doctor?.start();

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      log.info({ graceMs: config.shutdownGraceMs }, 'shutting down: finishing in-flight requests');
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), config.shutdownGraceMs);
      });
      const workerStopped = worker?.stop(config.shutdownGraceMs);
      if ((await Promise.race([closed, graceOver])) === 'timeout') {
        log.warn('grace period over: closing remaining connections');
        server.closeAllConnections();
        await closed;
      }
      clearTimeout(timer);
      await workerStopped;
      await doctor?.stop();
      await sweeper.stop();
      await resources.close();
      log.info('stopped');
    })());

  // Keep-alive connections that go idle after their last response are closed right away.
  server.on('request', (_req, res) => {
    res.on('finish', () => {
      if (stopping) server.closeIdleConnections();
    });
  });

  return { port, stop };
}
