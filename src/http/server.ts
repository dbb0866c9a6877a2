import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { createApp } from '../app';
import { describeDatabase } from '../catalog/database-settings';
import type { Config } from '../config';
import type { HttpSettings } from '../config/http';
import { ServiceMetrics } from '../metrics/metrics';
import { createPeriodicDoctor, createWorker, openResources, startExpiry, startSweeper } from '../resources';
import { every } from '../housekeeping';

export interface RunningServer {
  port: number;
  /** Stops accepting, lets in-flight requests finish within the grace period, closes the rest. */
  stop(): Promise<void>;
}

/**
 * The HTTP server's own limits on slow clients (the app adds the per-request ones: BODY_IDLE_TIMEOUT,
 * REQUEST_TIMEOUT and the upload caps):
 * - `headersTimeout` (HEADERS_TIMEOUT): the request line and headers must be in within this, or
 *   Node answers 408 and closes the connection. Checked every tenth of it (at most every 5 s).
 * - `requestTimeout` is off: Node applies it to whole requests, and a large upload on a slow link
 *   may take longer than any sane bound. Bodies are bounded per request instead (body-timeout.ts).
 * - `keepAliveTimeout` (KEEP_ALIVE_TIMEOUT): an idle keep-alive connection closes after this; 95 s
 *   behind Heroku's or Fly's proxy, so the proxy, not stowage, closes idle connections.
 */
export function createHttpServer(app: http.RequestListener, settings: HttpSettings): http.Server {
  const server = http.createServer({ connectionsCheckingInterval: Math.min(5000, Math.max(50, Math.floor(settings.headersTimeoutMs / 10))) }, app);
  server.headersTimeout = settings.headersTimeoutMs;
  server.requestTimeout = 0;
  server.keepAliveTimeout = settings.keepAliveTimeoutMs;
  return server;
}

export async function startServer(config: Config, log: Logger): Promise<RunningServer> {
  const resources = await openResources(config, log);
  const { store, files } = resources;
  const metrics = new ServiceMetrics();
  const worker = createWorker(resources, config, log, config.tasks.inProcessWorkers, metrics);
  const app = createApp({ config, resources, log, metrics });
  // The periodic doctor goes with the workers: here when they run in-process.
  const doctor = worker && createPeriodicDoctor(resources, config, log, metrics);
  const server = createHttpServer(app, config.http);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  log.info({ port, host: config.host, storage: store.driver, location: store.location, database: describeDatabase(config.database) }, 'listening');
  if (resources.authenticator.devMode) {
    log.warn({ owner: 'local' }, `dev mode: ${config.host} is loopback and no API key or JWT setting exists, so requests without credentials act as the owner "local"`);
  }
  if (resources.links.ephemeral) {
    log.warn('SECRET_KEY is not set: download, upload and page links and page sessions are signed with a random key made at start-up, so they stop working when this process stops (set SECRET_KEY to keep them, and for stowage links page)');
  }
  if (config.tasks.inProcessWorkers === 0 && config.database.kind === 'sqlite') {
    // Tasks queued here then say so (`waiting`), but the operator should hear it first.
    const { path: file } = config.database;
    log.warn(
      { database: file },
      file === ':memory:'
        ? 'WORKERS=0 with an in-memory catalog, which no other process can reach: reports queued here never run (set WORKERS to 1 or more)'
        : `WORKERS=0 with the embedded SQLite catalog: reports queued here run only while \`stowage worker\` runs on this host with the same DATABASE_PATH (${file}); otherwise set WORKERS to 1 or more`,
    );
  }
  worker?.start();
  resources.readiness.start();
  // What processes killed mid-operation left, here or on another instance sharing the volume and catalog.
  const sweeper = startSweeper(resources, config, log);
  // Finished tasks past TASK_RETENTION go, hourly; their output files stay.
  const retention = every(60 * 60_000, async () => {
    const removed = await resources.queue.pruneFinished(new Date(Date.now() - config.tasks.retentionMs));
    if (removed) log.info({ removed }, 'finished tasks past TASK_RETENTION removed');
  }, log, 'task retention');
  doctor?.start();
  // The expiry sweep goes with the workers too; without them this process only refreshes the storage gauges.
  const expiry = startExpiry(resources, config, log, { metrics, removeFiles: worker !== undefined });

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
      await expiry.stop();
      await retention.stop();
      await files.settled();
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
