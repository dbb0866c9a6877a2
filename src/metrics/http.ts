import { type RequestHandler, Router } from 'express';
import type { ServiceMetrics } from './metrics';

/**
 * Times every request into the latency histogram, labelled by the route pattern that handled it
 * (`/v1/files/:id`, never the raw URL, so ids can't blow up the number of series) or
 * `unmatched`. The pattern is taken when the router assigns `req.route`, because by the time an
 * error response finishes the router has already reset `req.baseUrl`.
 */
export function requestMetrics(metrics: ServiceMetrics): RequestHandler {
  return (req, res, next) => {
    const end = metrics.requestDuration.startTimer();
    let route: unknown;
    let pattern = 'unmatched';
    Object.defineProperty(req, 'route', {
      configurable: true,
      enumerable: true,
      get: () => route,
      set(value: { path?: unknown } | undefined) {
        route = value;
        if (typeof value?.path === 'string') pattern = `${req.baseUrl}${value.path}`;
      },
    });
    // 'prefinish' fires as the response is handed to the socket, before a client can have it
    // all, so a scrape that follows a response counts it; 'close' covers a client that hung up
    // first (having had every byte of a Content-Length body, it need not wait for our end).
    let timed = false;
    const record = () => {
      if (timed) return;
      timed = true;
      end({ method: req.method, route: pattern, status: String(res.statusCode) });
    };
    res.once('prefinish', record);
    res.once('close', record);
    next();
  };
}

/** `GET /metrics` in Prometheus text format (who may read it is the route table's: METRICS_TOKEN or a service key). */
export function metricsRouter(metrics: ServiceMetrics): Router {
  const router = Router();
  router.get('/metrics', async (_req, res) => {
    res.setHeader('Content-Type', metrics.registry.contentType);
    res.setHeader('Cache-Control', 'no-store');
    res.send(await metrics.registry.metrics());
  });
  return router;
}
