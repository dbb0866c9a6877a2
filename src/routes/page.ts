import { type Request, type Response, Router } from 'express';
import type { Logger } from 'pino';
import type { FileCatalog, FileRecord } from '../catalog/files';
import type { Config } from '../config';
import type { AppError } from '../errors';
import { errorHandler } from '../http/errors';
import { ownerFromHeader } from '../http/owner';
import type { ServiceMetrics } from '../metrics/metrics';
import type { Store } from '../storage/store';
import type { StoreSet } from '../storage/store-set';
import { type Assets, loadAssets } from '../web/assets';
import { errorMessages } from '../web/messages';
import { type Listing, type Notice, renderPage } from '../web/render';
import { sameOriginForm } from '../web/same-origin';
import { pageSecurityHeaders } from '../web/security-headers';
import { deleteOwnedFile } from './delete';
import { uploadFiles } from './upload';

const PAGE_SIZE = 50;
const FILE_ID = /^[0-9a-f]{32}$/;

export interface PageDeps {
  config: Config;
  store: Store;
  stores: StoreSet;
  catalog: FileCatalog;
  log: Logger;
  metrics: ServiceMetrics;
  assets?: Assets;
}

/**
 * The browser page at `/`. Its forms post to `/upload` and `/delete/:id`, which reuse the API's
 * upload and delete logic but answer like a web page: a 303 back to `/` on success, the page with
 * a readable message on failure. The page script uses the JSON API directly.
 */
export function pageRouter(deps: PageDeps): Router {
  const { config, catalog } = deps;
  const assets = deps.assets ?? loadAssets();
  const messages = errorMessages(config.uploads);
  const router = Router();
  const asPage = [pageSecurityHeaders, ownerFromHeader];

  const listing = async (req: Request): Promise<Listing> => {
    const cursor = typeof req.query.cursor === 'string' ? req.query.cursor : undefined;
    const page = await catalog.list(req.owner, { limit: PAGE_SIZE, cursor });
    return { ...page, cursor };
  };

  const send = (res: Response, status: number, list: Listing | undefined, notice?: Notice) => {
    // The page lists the owner's files: never serve it from a cache.
    res.status(status).setHeader('Cache-Control', 'no-store');
    res.type('html').send(renderPage({ assets, uploads: config.uploads, messages, listing: list, notice }));
  };

  /** What the redirect after a no-JavaScript post reports. */
  const resultNotice = async (req: Request): Promise<Notice | undefined> => {
    if (req.query.deleted !== undefined) return { kind: 'success', text: 'File deleted.' };
    if (typeof req.query.uploaded !== 'string') return undefined;
    const ids = req.query.uploaded.split(',').filter((id) => FILE_ID.test(id)).slice(0, config.uploads.maxFiles);
    const records = (await Promise.all(ids.map((id) => catalog.get(req.owner, id)))).filter((r): r is FileRecord => !!r);
    if (records.length === 0) return undefined;
    return { kind: 'success', text: `Uploaded ${records.length === 1 ? '1 file' : `${records.length} files`}: ${records.map((r) => r.name).join(', ')}.` };
  };

  router.use('/assets', pageSecurityHeaders, assets.serve);

  router.get('/', ...asPage, async (req, res) => {
    send(res, 200, await listing(req), await resultNotice(req));
  });

  router.post(
    '/upload',
    ...asPage,
    sameOriginForm,
    ...uploadFiles(deps, (_req, res, records) => {
      res.redirect(303, `/?uploaded=${records.map((r) => r.id).join(',')}`);
    }),
  );

  router.post('/delete/:id', ...asPage, sameOriginForm, async (req, res) => {
    await deleteOwnedFile(deps, req, String(req.params.id));
    res.redirect(303, '/?deleted=1');
  });

  // Errors on these routes render the page with a message a person can act on, not JSON.
  router.use(
    errorHandler(config.uploads, (req: Request, res: Response, error: AppError) => {
      const notice: Notice = { kind: 'error', text: messages[error.code] ?? error.message, detail: `(request id ${String(req.id)})` };
      // The first page of files still helps after a failed post (a broken cursor is not retried);
      // without a valid owner there is no list to show.
      const page = req.owner === undefined ? Promise.resolve(undefined) : catalog.list(req.owner, { limit: PAGE_SIZE });
      page.then(
        (list) => send(res, error.status, list, notice),
        () => send(res, error.status, undefined, notice),
      );
    }),
  );

  return router;
}
