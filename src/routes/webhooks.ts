import { Router } from 'express';
import { pageQuery } from '../http/paging';
import type { Webhooks } from '../webhooks/endpoints';

/** `GET /v1/webhooks/deliveries`: the caller's events and where each delivery stands. */
export function webhooksRouter(webhooks: Webhooks): Router {
  const router = Router();
  router.get('/webhooks/deliveries', async (req, res) => {
    res.json(await webhooks.deliveries(req.owner, pageQuery(req.query)));
  });
  return router;
}
