import express, { type Express } from 'express';
import type { Logger } from 'pino';
import type { CatalogDb } from './catalog/database';
import { FileCatalog } from './catalog/files';
import type { Config } from './config';
import { errorHandler, notFoundRoute } from './http/errors';
import { requestLogging } from './http/logging';
import { ownerFromHeader } from './http/owner';
import { metricsRouter, requestMetrics } from './metrics/http';
import { ServiceMetrics } from './metrics/metrics';
import { filesRouter } from './routes/files';
import { healthRouter } from './routes/health';
import { reportsRouter } from './routes/reports';
import { tasksRouter } from './routes/tasks';
import { pageRouter } from './routes/page';
import type { Store } from './storage/store';
import type { TaskQueue } from './tasks/queue';
import { StoreSet } from './storage/store-set';
import { directUploadsRouter } from './routes/direct-uploads';
import { mirrorOnReady } from './mirror/enqueue';
import { flyReplayRouter } from './http/fly-replay';
import { openApiRouter } from './api/openapi';

export interface AppDeps {
  config: Config;
  store: Store;
  /** Stores records may point at, for reads and deletes; defaults to the primary store alone. */
  stores?: StoreSet;
  db: CatalogDb;
  queue: TaskQueue;
  log: Logger;
  /** Shared with whatever else reports metrics (the periodic doctor); a fresh set by default. */
  metrics?: ServiceMetrics;
}

/** Builds the Express app from its dependencies; nothing here reads the environment. */
export function createApp({ config, store, stores = new StoreSet(store), db, queue, log, metrics = new ServiceMetrics() }: AppDeps): Express {
  const catalog = new FileCatalog(db, mirrorOnReady(stores), config.placement);
  metrics.setQueueDepthSource(() => queue.depthByKind());
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(requestMetrics(metrics));
  app.use(requestLogging(log));
  app.use(metricsRouter(metrics, config.metricsToken));
  app.use(healthRouter({ store, db }));
  app.use(pageRouter({ config, store, stores, catalog, log, metrics, queue }));
  app.use(openApiRouter());
  app.use(
    '/v1',
    ownerFromHeader,
    ...(config.placement ? [flyReplayRouter({ placement: config.placement, catalog })] : []),
    filesRouter({ config, store, stores, catalog, log, metrics }),
    directUploadsRouter({ config, stores, catalog, db, log }),
    tasksRouter({ queue, catalog }),
    reportsRouter({ config, queue, catalog }),
  );
  app.use(notFoundRoute);
  app.use(errorHandler(config.uploads));
  return app;
}
