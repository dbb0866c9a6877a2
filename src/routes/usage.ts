import { Router } from 'express';
import type { Quotas } from '../quotas/quotas';

/** `GET /v1/usage`: what the caller's files take, per store and in all, and its quota. */
export function usageRouter(quotas: Quotas): Router {
  const router = Router();
  router.get('/usage', async (req, res) => {
    res.json(await quotas.usage(req.owner));
  });
  return router;
}
