import { Router } from 'express';
import { sql } from 'kysely';
import type { CatalogDb } from '../catalog/database';
import { AppError } from '../errors';
import type { Store } from '../storage/store';

/** `/healthz`: the process answers. `/readyz`: the store and the database both work now. */
export function healthRouter(deps: { store: Store; db: CatalogDb }): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (req, res) => {
    const checks = await Promise.allSettled([deps.store.probe(), sql`select 1`.execute(deps.db)]);
    const [store, database] = checks.map((c) => (c.status === 'fulfilled' ? 'ok' : String((c.reason as Error).message)));
    if (store !== 'ok' || database !== 'ok') {
      req.log.warn({ store, database }, 'not ready');
      const reasons = [store !== 'ok' && `store: ${store}`, database !== 'ok' && `database: ${database}`].filter(Boolean);
      throw new AppError(503, 'not_ready', `Not ready: ${reasons.join('; ')}`);
    }
    res.json({ status: 'ready', checks: { store, database } });
  });
  return router;
}
