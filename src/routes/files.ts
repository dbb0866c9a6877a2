import { Router } from 'express';
import type { Logger } from 'pino';
import type { FileCatalog } from '../catalog/files';
import type { Config } from '../config';
import { NotFound } from '../errors';
import { pageQuery } from '../http/paging';
import type { ServiceMetrics } from '../metrics/metrics';
import type { Store } from '../storage/store';
import type { StoreSet } from '../storage/store-set';
import { deleteOwnedFile } from './delete';
import { downloadContent } from './download';
import { presentFile } from './present';
import { uploadFiles } from './upload';

export function filesRouter(deps: {
  config: Config;
  store: Store;
  stores: StoreSet;
  catalog: FileCatalog;
  log: Logger;
  metrics: ServiceMetrics;
}): Router {
  const { stores, catalog } = deps;
  const router = Router();

  router.post('/files', ...uploadFiles(deps));

  router.get('/files', async (req, res) => {
    const page = await catalog.list(req.owner, pageQuery(req.query));
    res.json({ files: page.files.map(presentFile), nextCursor: page.nextCursor ?? null });
  });

  router.get('/files/:id', async (req, res) => {
    const record = await catalog.get(req.owner, req.params.id);
    if (!record) throw new NotFound('No file with that id.');
    res.json(presentFile(record));
  });

  const content = downloadContent(deps);
  router.get('/files/:id/content', content);
  router.head('/files/:id/content', content);

  router.delete('/files/:id', async (req, res) => {
    await deleteOwnedFile({ stores, catalog }, req, req.params.id);
    res.status(204).end();
  });

  return router;
}
