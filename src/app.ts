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
import { pageRouter } from './routes/page';
import type { Store } from './storage/store';

export interface AppDeps {
  config: Config;
  store: Store;
  db: CatalogDb;
  log: Logger;
}

/** Builds the Express app from its dependencies; nothing here reads the environment. */
export function createApp({ config, store, db, log }: AppDeps): Express {
  const catalog = new FileCatalog(db);
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(requestLogging(log));
  app.use(healthRouter({ store, db }));
  app.use(pageRouter({ config, store, catalog, log }));
  app.use('/v1', ownerFromHeader, filesRouter({ config, store, catalog, log }));
  app.use(notFoundRoute);
  app.use(errorHandler(config.uploads));
  return app;
}
