import { Router } from 'express';
import type { Logger } from 'pino';
import type { FileCatalog } from '../catalog/files';
import type { Config } from '../config';
import { BadRequest, NotFound } from '../errors';
import type { ServiceMetrics } from '../metrics/metrics';
import type { Store } from '../storage/store';
import type { StoreSet } from '../storage/store-set';
import { deleteMirrorCopy } from '../mirror/delete';
import { downloadContent } from './download';
import { presentFile } from './present';
import { uploadFiles } from './upload';

const DEFAULT_PAGE = 50;
const MAX_PAGE = 200;

function pageLimit(value: unknown): number {
  if (value === undefined) return DEFAULT_PAGE;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_PAGE) {
    throw new BadRequest(`limit must be a whole number from 1 to ${MAX_PAGE}.`, 'invalid_limit');
  }
  return n;
}

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
    const cursor = typeof req.query.cursor === 'string' ? req.query.cursor : undefined;
    const page = await catalog.list(req.owner, { limit: pageLimit(req.query.limit), cursor });
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

  // The record goes first: once it is gone nobody can be handed the blob, so a crash between the
  // two steps leaves an orphan blob (which the doctor finds), never a record without its file.
  router.delete('/files/:id', async (req, res) => {
    const record = await catalog.get(req.owner, req.params.id);
    if (!record) throw new NotFound('No file with that id.');
    // Resolved first: a record whose store is unreachable is kept rather than orphan its blob.
    const store = stores.get(record.store);
    if (!(await catalog.delete(req.owner, record.id))) throw new NotFound('No file with that id.');
    await store.delete(record.key).catch((err) => {
      req.log.error({ err, fileId: record.id, key: record.key }, 'record deleted but blob removal failed');
    });
    await deleteMirrorCopy(stores, record, req.log);
    res.status(204).end();
  });

  return router;
}
