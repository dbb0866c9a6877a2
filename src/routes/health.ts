import { Router } from 'express';
import { AppError } from '../errors';
import type { Readiness } from '../readiness';

/**
 * `/healthz`: the process answers. `/readyz`: the store (as last checked) and the database work
 * now. No worker is reported in the body, not as a failure: web instances can serve everything
 * else, and failing them all because the workers are scaled to zero would make things worse.
 */
export function healthRouter(deps: { readiness: Readiness }): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (req, res) => {
    const r = await deps.readiness.report();
    if (r.store !== 'ok' || r.database !== 'ok') {
      // The why (paths, hosts, driver errors) is the operator's: in the log, not in the answer.
      req.log.warn({ store: r.why.store ?? 'ok', database: r.why.database ?? 'ok' }, 'not ready');
      const reasons = [r.store !== 'ok' && 'store: unavailable', r.database !== 'ok' && 'database: unavailable'].filter(Boolean);
      throw new AppError(503, 'not_ready', `Not ready: ${reasons.join('; ')}. The log says why.`);
    }
    res.json({
      status: 'ready',
      checks: { store: r.store, database: r.database, workers: r.workers },
      storeCheckedAt: r.storeCheckedAt.toISOString(),
      storeCheckAgeSeconds: Math.max(0, Math.round((Date.now() - r.storeCheckedAt.getTime()) / 1000)),
      ...(r.message && { message: r.message }),
    });
  });
  return router;
}
