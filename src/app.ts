import express, { type Express } from 'express';
import type { Logger } from 'pino';
import type { Config } from './config';
import { bodyTimeouts } from './http/body-timeout';
import { errorHandler, notFoundRoute } from './http/errors';
import { flyReplayRouter } from './http/fly-replay';
import { crossOrigin } from './http/cors';
import { securityHeaders } from './http/helmet';
import { requestLogging } from './http/logging';
import { authFailureLimit } from './auth/failure-limit';
import { guard } from './auth/guard';
import { unlistedRoutes } from './auth/route-table';
import { registeredRoutes } from './http/registered-routes';
import { metricsRouter, requestMetrics } from './metrics/http';
import { ServiceMetrics } from './metrics/metrics';
import type { Resources } from './resources';
import { directUploadsRouter } from './routes/direct-uploads';
import { filesRouter } from './routes/files';
import { healthRouter } from './routes/health';
import { linksRouter } from './routes/links';
import { pageRouter } from './routes/page';
import { reportsRouter } from './routes/reports';
import { tasksRouter } from './routes/tasks';
import { usageRouter } from './routes/usage';
import { webhooksRouter } from './routes/webhooks';
import { tusRouter } from './routes/tus';
import { UploadSlots } from './uploads/upload-slots';
import { openApiRouter } from './api/openapi';

export interface AppDeps {
  config: Config;
  /** Built once by `openResources`; the app builds no services of its own. */
  resources: Pick<Resources, 'files' | 'quotas' | 'queue' | 'directUploads' | 'tus' | 'authenticator' | 'links' | 'sessions' | 'readiness' | 'webhooks'>;
  log: Logger;
  /** Shared with whatever else reports metrics (the periodic doctor); a fresh set by default. */
  metrics?: ServiceMetrics;
}

/** Builds the Express app from its dependencies; nothing here reads the environment. */
export function createApp({ config, resources, log, metrics = new ServiceMetrics() }: AppDeps): Express {
  const { files, quotas, queue, directUploads, tus, authenticator, links, sessions, readiness, webhooks } = resources;
  const { uploads, downloads, reports, tasks, placement } = config;
  metrics.setQueueDepthSource(() => queue.depthByKind());
  const uploadSlots = new UploadSlots(config.http.uploadSlots);
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // Behind Heroku's or Fly's router: the client's address (failed-attempt limits, logs) and https (HSTS).
  app.set('trust proxy', config.trustProxy);
  app.use(requestMetrics(metrics));
  app.use(requestLogging(log));
  app.use(bodyTimeouts(config.http));
  app.use(securityHeaders());
  // Preflights carry no credentials: answered here, before the failure limit and the guard.
  if (config.auth.corsOrigins.length) app.use(crossOrigin(config.auth.corsOrigins));
  app.use(authFailureLimit({ ...config.auth.failureLimit, trustProxy: config.trustProxy }, log));
  app.use(guard(authenticator));
  app.use(metricsRouter(metrics));
  app.use(healthRouter({ readiness }));
  app.use(pageRouter({ uploads, tus: config.tus, uploadSlots, reports, tasks, files, queue, log, metrics, sessions }));
  app.use(openApiRouter());
  app.use(
    '/v1',
    ...(placement ? [flyReplayRouter({ placement, files })] : []),
    filesRouter({ uploads, uploadSlots, downloads, files, log, metrics }),
    directUploadsRouter(directUploads),
    tusRouter({ uploads, uploadSlots, files, tus }),
    tasksRouter({ queue, files }),
    usageRouter(quotas),
    webhooksRouter(webhooks),
    reportsRouter({ reports, tasks, queue, files }),
    linksRouter({ links, sessions, files, uploads, uploadSlots, downloads, placement, log, metrics }),
  );
  app.use(notFoundRoute);
  app.use(errorHandler(uploads));
  // A route the access table doesn't list would be open to any caller: refuse to build the app.
  const unlisted = unlistedRoutes(registeredRoutes(app));
  if (unlisted.length) throw new Error(`Routes missing from the access table (src/auth/route-table.ts): ${unlisted.join(', ')}`);
  return app;
}
