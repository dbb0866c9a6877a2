import { Router } from 'express';
import { sql } from 'kysely';
import type { CatalogDb } from '../catalog/database';
import { AppError } from '../errors';
import type { Store } from '../storage/store';

/** An error's message and its causes', for the log. */
function causes(err: unknown): string {
  const parts: string[] = [];
  for (let e = err as { message?: unknown; cause?: unknown } | undefined; e && parts.length < 5; e = e.cause as typeof e) parts.push(String(e.message ?? e));
  return parts.join(': ');
}

/** `/healthz`: the process answers. `/readyz`: the store and the database both work now. */
export function healthRouter(deps: { store: Store; db: CatalogDb }): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (req, res) => {
    const checks = await Promise.allSettled([deps.store.probe(), sql`select 1`.execute(deps.db)]);
    const [store, database] = checks.map((c) => (c.status === 'fulfilled' ? 'ok' : 'unavailable'));
    if (store !== 'ok' || database !== 'ok') {
      // The why (paths, hosts, driver errors) is the operator's: in the log, not in the answer.
      const [storeWhy, databaseWhy] = checks.map((c) => (c.status === 'rejected' ? causes(c.reason) : 'ok'));
      req.log.warn({ store: storeWhy, database: databaseWhy }, 'not ready');
      const reasons = [store !== 'ok' && 'store: unavailable', database !== 'ok' && 'database: unavailable'].filter(Boolean);
      throw new AppError(503, 'not_ready', `Not ready: ${reasons.join('; ')}. The log says why.`);
    }
    res.json({ status: 'ready', checks: { store, database } });
  });
  return router;
}
