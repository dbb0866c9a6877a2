import express, { type Request, type Response, Router } from 'express';
import type { Logger } from 'pino';
import type { FileRecord } from '../catalog/files';
import type { Config } from '../config';
import type { Files } from '../files/files';
import { type AppError, BadRequest } from '../errors';
import { errorHandler } from '../http/errors';
import type { ServiceMetrics } from '../metrics/metrics';
import type { ReportRequest } from '../reports/spec';
import type { TaskQueue } from '../tasks/queue';
import { REPORT_TASK } from '../tasks/report-task';
import type { Sessions } from '../auth/sessions';
import { uploadLimitsFor } from '../uploads/limits';
import { type Assets, loadAssets } from '../web/assets';
import { renderNoSession } from '../web/link-pages';
import { errorMessages } from '../web/messages';
import { type Listing, type Notice, type PageView, renderPage, type SessionView } from '../web/render';
import type { ReportTaskView } from '../web/report-view';
import { sameOriginForm } from '../web/same-origin';
import { pageSecurityHeaders } from '../web/security-headers';
import { deleteOwnedFile } from './files';
import { queueReport } from './reports';
import { presentTasks } from './tasks';
import { uploadFiles } from './upload';
import type { UploadSlots } from '../uploads/upload-slots';

const PAGE_SIZE = 50;
const FILE_ID = /^[0-9a-f]{32}$/;
/** Task ids are 32 hex characters too (randomBytes(16)). */
const TASK_ID = FILE_ID;
/** Report sources offered in the form; older ones are still reachable through the API. */
const SOURCES_LIMIT = 200;

export interface PageDeps {
  uploads: Config['uploads'];
  tus: Config['tus'];
  uploadSlots: UploadSlots;
  reports: Config['reports'];
  tasks: Config['tasks'];
  files: Files;
  log: Logger;
  metrics: ServiceMetrics;
  queue: TaskQueue;
  /** Tells a session that ended from none at all. */
  sessions: Pick<Sessions, 'sent'>;
  assets?: Assets;
}

/**
 * The browser page at `/`. Its forms post to `/upload`, `/delete/:id` and `/report`, which reuse
 * the API's logic but answer like a web page: a 303 to a page showing the result on success, the
 * page with a readable message on failure. The page scripts use the JSON API directly.
 */
export function pageRouter(deps: PageDeps): Router {
  const { uploads, files, queue } = deps;
  const assets = deps.assets ?? loadAssets();
  const messages = errorMessages(uploads);
  const router = Router();
  const asPage = [pageSecurityHeaders];

  const listing = async (req: Request): Promise<Listing> => {
    const cursor = typeof req.query.cursor === 'string' ? req.query.cursor : undefined;
    const page = await files.list(req.owner, { limit: PAGE_SIZE, cursor });
    return { ...page, cursor };
  };

  /** Who the page is for: a session's owner (and whether it may only upload); nothing to say in dev mode or with a key. */
  const sessionOf = (req: Request): SessionView | undefined => {
    const p = req.principal;
    if (!p || (p.via !== 'session' && !p.upload)) return undefined;
    return { owner: p.owner, expiresAt: p.expiresAt, uploadOnly: p.upload !== undefined };
  };
  const uploadOnly = (req: Request) => req.principal?.upload !== undefined;

  type Parts = Pick<PageView, 'listing' | 'reportSources' | 'task' | 'notice'>;
  const send = (req: Request, res: Response, status: number, parts: Parts) => {
    // The page lists the owner's files: never serve it from a cache.
    res.status(status).setHeader('Cache-Control', 'no-store');
    const grant = req.principal?.upload;
    // An upload link's page states (and explains refusals by) the link's limits.
    const limits = uploadLimitsFor(uploads, grant);
    const view = { assets, uploads: limits, resumableFrom: deps.tus.pageThresholdBytes, messages: grant ? errorMessages(limits) : messages, session: sessionOf(req) };
    res.type('html').send(renderPage({ ...view, ...parts }));
  };

  /** What the redirect after a no-JavaScript post reports. */
  const resultNotice = async (req: Request): Promise<Notice | undefined> => {
    if (req.query.deleted !== undefined) return { kind: 'success', text: 'File deleted.' };
    if (typeof req.query.uploaded !== 'string') return undefined;
    const ids = req.query.uploaded.split(',').filter((id) => FILE_ID.test(id)).slice(0, uploads.maxFiles);
    const records = (await Promise.all(ids.map((id) => files.get(req.owner, id)))).filter((r): r is FileRecord => !!r);
    if (records.length === 0) return undefined;
    return { kind: 'success', text: `Uploaded ${records.length === 1 ? '1 file' : `${records.length} files`}: ${records.map((r) => r.name).join(', ')}.` };
  };

  /** The report task named by `?task=`, as the API presents it; null when it is not the owner's report. */
  const reportTask = async (req: Request): Promise<ReportTaskView | null | undefined> => {
    if (typeof req.query.task !== 'string') return undefined;
    const task = TASK_ID.test(req.query.task) ? await queue.get(req.owner, req.query.task) : undefined;
    if (!task || task.kind !== REPORT_TASK) return null;
    const { title, format } = task.payload as ReportRequest;
    return { ...(await presentTasks([task], { queue, files }))[0], title, format };
  };

  router.use('/assets', pageSecurityHeaders, assets.serve);

  router.get('/', ...asPage, async (req, res) => {
    if (!req.principal) {
      // How to get a session, and nothing else: no files, no form.
      res.status(401).setHeader('Cache-Control', 'no-store');
      res.setHeader('WWW-Authenticate', 'Bearer');
      res.type('html').send(renderNoSession(assets, deps.sessions.sent(req)));
      return;
    }
    if (uploadOnly(req)) {
      send(req, res, 200, { notice: await resultNotice(req) });
      return;
    }
    const [list, reportSources, task, notice] = await Promise.all([
      listing(req),
      files.listReportSources(req.owner, SOURCES_LIMIT),
      reportTask(req),
      resultNotice(req),
    ]);
    if (task === null) {
      send(req, res, 404, { listing: list, reportSources, notice: { kind: 'error', text: messages.task_not_found!, area: 'report' } });
    } else {
      send(req, res, 200, { listing: list, reportSources, task, notice });
    }
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
    await deleteOwnedFile(files, req.owner, String(req.params.id), req.log);
    res.redirect(303, '/?deleted=1');
  });

  // The report form's fields, as a URL-encoded post: a few short strings.
  router.post('/report', ...asPage, sameOriginForm, express.urlencoded({ extended: false, limit: '16kb' }), async (req, res) => {
    const form = (req.body ?? {}) as Record<string, unknown>;
    if (typeof form.source !== 'string' || form.source === '') throw new BadRequest('Choose a file to make the report from.', 'no_source');
    const task = await queueReport(deps, req.owner, { format: form.format, title: form.title, source: { fileId: form.source } });
    res.redirect(303, `/?task=${task.id}`);
  });

  // Errors on these routes render the page with a message a person can act on, not JSON.
  router.use(
    errorHandler(uploads, (req: Request, res: Response, error: AppError) => {
      const said = req.principal?.upload ? errorMessages(uploadLimitsFor(uploads, req.principal.upload)) : messages;
      const notice: Notice = {
        kind: 'error',
        text: said[error.code] ?? error.message,
        detail: `(request id ${String(req.id)})`,
        area: req.path === '/report' ? 'report' : 'upload',
      };
      // The first page of files still helps after a failed post (a broken cursor is not retried);
      // without a valid owner there is no list to show, and an upload link's page shows none.
      const owner = req.owner;
      const parts =
        owner === undefined || uploadOnly(req)
          ? Promise.resolve({})
          : Promise.all([files.list(owner, { limit: PAGE_SIZE }), files.listReportSources(owner, SOURCES_LIMIT)]).then(
              ([list, reportSources]) => ({ listing: list, reportSources }),
            );
      parts.then(
        (found) => send(req, res, error.status, { ...found, notice }),
        () => send(req, res, error.status, { notice }),
      );
    }),
  );

  return router;
}
