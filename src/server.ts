import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { createApp } from './app';
import { type CatalogDb, openDatabase } from './catalog/database';
import { migrateToLatest } from './catalog/migrations';
import type { Config } from './config';
import { DEFAULT_GRACE_MS } from './doctor/context';
import { PeriodicDoctor } from './doctor/periodic';
import { storeMap } from './doctor/stores';
import { ServiceMetrics } from './metrics/metrics';
import { openStore } from './storage';
import type { Store } from './storage/store';

export interface RunningServer {
  port: number;
  /** Stops accepting, lets in-flight requests finish within the grace period, closes the rest. */
  stop(): Promise<void>;
}

/** Opens the store and the catalog, proving both usable, and runs pending migrations. */
export async function openResources(config: Config, log: Logger): Promise<{ store: Store; db: CatalogDb }> {
  const store = await openStore(config.storage);
  const db = openDatabase(config.databasePath);
  try {
    const { applied } = await migrateToLatest(db);
    if (applied.length) log.info({ applied }, 'database migrated');
  } catch (err) {
    await db.destroy();
    throw err;
  }
  return { store, db };
}

export async function startServer(config: Config, log: Logger): Promise<RunningServer> {
  const { store, db } = await openResources(config, log);
  const metrics = new ServiceMetrics();
  const app = createApp({ config, store, db, log, metrics });
  // Off by default; the lead moves this into the worker process once it exists.
  const doctor = config.doctorIntervalMs
    ? new PeriodicDoctor(
        { db, stores: storeMap(store), log },
        { intervalMs: config.doctorIntervalMs, graceMs: DEFAULT_GRACE_MS, onReport: (r) => metrics.doctorRun(r) },
      )
    : undefined;
  const server = http.createServer(app);
  // Large uploads on slow links can take longer than Node's 5-minute default.
  server.requestTimeout = 0;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  log.info({ port, host: config.host, storage: store.driver, location: store.location, database: config.databasePath }, 'listening');
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
      if ((await Promise.race([closed, graceOver])) === 'timeout') {
        log.warn('grace period over: closing remaining connections');
        server.closeAllConnections();
        await closed;
      }
      clearTimeout(timer);
      await doctor?.stop();
      await store.close();
      await db.destroy();
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
