import express, { type Express } from 'express';
import type { Logger } from 'pino';
import type { CatalogDb } from './catalog/database';
import { FileCatalog } from './catalog/files';
import type { Config } from './config';
import { errorHandler, notFoundRoute } from './http/errors';
import { requestLogging } from './http/logging';
import { ownerFromHeader } from './http/owner';
import { filesRouter } from './routes/files';
import { healthRouter } from './routes/health';
import { tasksRouter } from './routes/tasks';
import type { Store } from './storage/store';
import type { TaskQueue } from './tasks/queue';
import { StoreSet } from './storage/store-set';
import { directUploadsRouter } from './routes/direct-uploads';

export interface AppDeps {
  config: Config;
  store: Store;
  /** Stores records may point at, for reads and deletes; defaults to the primary store alone. */
  stores?: StoreSet;
  db: CatalogDb;
  queue: TaskQueue;
  log: Logger;
}

/** Builds the Express app from its dependencies; nothing here reads the environment. */
export function createApp({ config, store, stores = new StoreSet(store), db, queue, log }: AppDeps): Express {
  const catalog = new FileCatalog(db);
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(requestLogging(log));
  app.use(healthRouter({ store, db }));
  app.use(
    '/v1',
    ownerFromHeader,
    filesRouter({ config, store, stores, catalog, log }),
    directUploadsRouter({ config, stores, catalog, db, log }),
    tasksRouter({ queue, catalog }),
  );
  app.use(notFoundRoute);
  app.use(errorHandler(config.uploads));
  return app;
}
