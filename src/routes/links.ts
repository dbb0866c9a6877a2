import express, { type Request, type RequestHandler, type Response, Router } from 'express';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { downloadLinkRequest, pageLinkRequest, uploadLinkRequest } from '../api/schemas';
import type { DownloadLink, Links } from '../auth/links';
import { allows } from '../auth/principal';
import type { Sessions } from '../auth/sessions';
import type { Placement } from '../catalog/placement';
import type { Config } from '../config';
import { type AppError, Forbidden, NotFound, Unprocessable } from '../errors';
import type { Files } from '../files/files';
import { lifetimeFrom } from '../files/lifetime';
import type { UploadSlots } from '../uploads/upload-slots';
import { errorHandler, sendJson } from '../http/errors';
import { replayToOwningMachine } from '../http/fly-replay';
import type { ServiceMetrics } from '../metrics/metrics';
import { typeAllowed } from '../uploads/content-types';
import { uploadLimitsFor } from '../uploads/limits';
import { type Assets, loadAssets } from '../web/assets';
import { renderLinkProblem, renderLinkUploadResult, renderSessionStart } from '../web/link-pages';
import { errorMessages } from '../web/messages';
import { pageSecurityHeaders } from '../web/security-headers';
import { downloadContent, type DownloadTarget } from './download';
import { presentFile } from './present';
import { uploadFiles } from './upload';

export interface LinksRouteDeps {
  links: Links;
  sessions: Sessions;
  files: Files;
  uploads: Config['uploads'];
  /** Upload links' posts count against the same caps on uploads in flight as any upload. */
  uploadSlots: UploadSlots;
  downloads: Config['downloads'];
  placement?: Placement;
  log: Logger;
  metrics: ServiceMetrics;
  assets?: Assets;
}

function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.output<T> {
  // No body (or not JSON) means every default: `curl -X POST .../links` makes a one-hour link.
  const parsed = schema.safeParse(body ?? {});
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`);
    throw new Unprocessable(`The link request is invalid (${problems.join('; ')}).`, 'invalid_link_request');
  }
  return parsed.data;
}

/** Whose link: the caller's owner, or another one named by a service key. */
function linkOwner(req: Request, named: string | undefined): string {
  if (named === undefined || named === req.owner) return req.owner;
  if (!req.principal || !allows(req.principal.scope, 'service')) {
    throw new Forbidden('Only a service key may make a link for another owner.', 'owner_not_allowed');
  }
  return named;
}

/** This server's address as the client reached it (behind a proxy, as TRUST_PROXY lets Express read it). */
const absolute = (req: Request, path: string) => `${req.protocol}://${req.get('host')}${path}`;

/** A browser navigating (a form post, a followed link) rather than a program asking for JSON. */
const wantsHtml = (req: Request) => req.accepts(['application/json', 'text/html']) === 'text/html';

/** Tokens in a URL must not travel on in a Referer, and links are not for search engines. */
const linkHeaders: RequestHandler = (_req, res, next) => {
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('X-Robots-Tag', 'noindex, nofollow');
  next();
};

/** An upload link is meant to be posted to from other sites' pages: they may read the answer (no cookies are involved). */
const anyOrigin: RequestHandler = (_req, res, next) => {
  if (!res.hasHeader('Access-Control-Allow-Origin')) res.setHeader('Access-Control-Allow-Origin', '*');
  next();
};

const PROBLEM_TITLES: Record<string, string> = {
  link_invalid: 'This link does not work',
  link_expired: 'This link has expired',
  not_found: 'This file is not here any more',
};

/**
 * Links for people without credentials, each a token signed with SECRET_KEY (see auth/links.ts):
 *
 * - `POST /v1/files/:id/links` → a download link `GET|HEAD /v1/links/<token>`, answered by the
 *   same code as `/v1/files/:id/content` (ranges, ETag/304, redirect mode).
 * - `POST /v1/upload-links` → `POST /v1/upload-links/<token>` takes multipart uploads within the
 *   link's limits until it expires; `GET` on it opens the upload page (an upload-only session).
 * - `POST /v1/page-links` → `GET /v1/page-links/<token>` opens the page with a session.
 *
 * Making a link needs write (a service key may name another owner); using one needs only the link.
 */
export function linksRouter(deps: LinksRouteDeps): Router {
  const { links, sessions, files, uploads, placement } = deps;
  const assets = deps.assets ?? loadAssets();
  const router = Router();

  router.post('/files/:id/links', express.json({ limit: '16kb' }), async (req, res) => {
    const body = parseBody(downloadLinkRequest, req.body);
    const fileId = String(req.params.id);
    // Another owner's file answers exactly as an id that never existed.
    if (!(await files.get(req.owner, fileId))) throw new NotFound('No file with that id.');
    const expiresAt = links.expiryIn(body.expiresIn);
    const token = links.download({ owner: req.owner, fileId, disposition: body.disposition, expiresAt });
    res.status(201).json({ url: absolute(req, `/v1/links/${token}`), expiresAt: expiresAt.toISOString() });
  });

  const readDownloadLink: RequestHandler = (req, res, next) => {
    res.locals.link = links.readDownload(String(req.params.token));
    next();
  };
  const linked = (res: Response) => res.locals.link as DownloadLink;
  const target = (_req: Request, res: Response): DownloadTarget => {
    const link = linked(res);
    return { owner: link.owner, id: link.fileId, disposition: link.disposition, notAfter: link.expiresAt };
  };
  const replay = placement ? [replayToOwningMachine({ placement, files }, (_req, res) => ({ owner: linked(res).owner, id: linked(res).fileId }))] : [];
  const content = downloadContent(deps, target);

  router.post('/upload-links', express.json({ limit: '16kb' }), (req, res) => {
    const body = parseBody(uploadLinkRequest, req.body);
    const owner = linkOwner(req, body.owner);
    const problems: string[] = [];
    if (body.maxBytes !== undefined && body.maxBytes > uploads.maxBytes) problems.push(`maxBytes: at most ${uploads.maxBytes} on this server (MAX_UPLOAD_BYTES)`);
    if (body.maxFiles !== undefined && body.maxFiles > uploads.maxFiles) problems.push(`maxFiles: at most ${uploads.maxFiles} on this server (MAX_FILES_PER_REQUEST)`);
    const server = uploads.allowedContentTypes;
    for (const type of body.allowedTypes ?? []) {
      if (server.length > 0 && !typeAllowed(server, type)) problems.push(`allowedTypes: ${type} is not accepted by this server (ALLOWED_CONTENT_TYPES: ${server.join(', ')})`);
    }
    if (problems.length) throw new Unprocessable(`The link request is invalid (${problems.join('; ')}).`, 'invalid_link_request');
    const lifetimeMs = body.fileExpiresIn === undefined ? undefined : lifetimeFrom(body.fileExpiresIn, 'fileExpiresIn');
    const grant = { maxBytes: body.maxBytes ?? uploads.maxBytes, maxFiles: body.maxFiles ?? uploads.maxFiles, allowedTypes: body.allowedTypes ?? [], ...(lifetimeMs && { lifetimeMs }) };
    const expiresAt = links.expiryIn(body.expiresIn);
    const url = absolute(req, `/v1/upload-links/${links.upload({ owner, grant, expiresAt })}`);
    res.status(201).json({ url, pageUrl: url, expiresAt: expiresAt.toISOString() });
  });

  router.post('/page-links', express.json({ limit: '16kb' }), (req, res) => {
    const body = parseBody(pageLinkRequest, req.body);
    const owner = linkOwner(req, body.owner);
    const expiresAt = links.expiryIn(body.expiresIn);
    res.status(201).json({ url: absolute(req, `/v1/page-links/${links.page({ owner, expiresAt })}`), expiresAt: expiresAt.toISOString() });
  });

  /** A person who followed a link reads what went wrong as a page; a program gets the JSON error. */
  const linkErrors = errorHandler(uploads, (req: Request, res: Response, error: AppError) => {
    if (!wantsHtml(req)) return sendJson(req, res, error);
    const messages = errorMessages(uploadLimitsFor(uploads, req.principal?.upload));
    const title = PROBLEM_TITLES[error.code] ?? 'Nothing was uploaded';
    res.setHeader('Cache-Control', 'no-store');
    res.status(error.status).type('html').send(renderLinkProblem(assets, title, messages[error.code] ?? error.message, `(request id ${String(req.id)})`));
  });

  router.get('/links/:token', linkHeaders, readDownloadLink, ...replay, content, linkErrors);
  router.head('/links/:token', linkHeaders, readDownloadLink, ...replay, content, linkErrors);

  // Opening a page or upload link: the session cookie, then the page.
  const sessionStart = (uploadOnly: boolean) => (_req: Request, res: Response) => {
    res.setHeader('Cache-Control', 'no-store');
    res.type('html').send(renderSessionStart(assets, uploadOnly));
  };
  const openPageLink: RequestHandler = (req, res, next) => {
    const link = links.readPage(String(req.params.token));
    sessions.start(req, res, { owner: link.owner, expiresAt: link.expiresAt });
    next();
  };
  const openUploadLink: RequestHandler = (req, res, next) => {
    const link = links.readUpload(String(req.params.token));
    sessions.start(req, res, { owner: link.owner, expiresAt: link.expiresAt, grant: link.grant });
    next();
  };
  router.get('/page-links/:token', pageSecurityHeaders, linkHeaders, openPageLink, sessionStart(false), linkErrors);
  router.get('/upload-links/:token', pageSecurityHeaders, linkHeaders, openUploadLink, sessionStart(true), linkErrors);

  // Posting to an upload link: the link is the permission, and its limits apply.
  const asUploadLink: RequestHandler = (req, _res, next) => {
    const link = links.readUpload(String(req.params.token));
    req.principal = { owner: link.owner, scope: 'write', via: 'upload_link', id: link.owner, upload: link.grant, expiresAt: link.expiresAt };
    req.owner = link.owner;
    req.log = req.log.child({ auth: 'upload_link', owner: link.owner });
    next();
  };
  router.post(
    '/upload-links/:token',
    pageSecurityHeaders,
    linkHeaders,
    anyOrigin,
    asUploadLink,
    ...uploadFiles(deps, (req, res, records) => {
      if (wantsHtml(req)) {
        res.setHeader('Cache-Control', 'no-store');
        res.status(201).type('html').send(renderLinkUploadResult(assets, records));
      } else {
        res.status(201).json({ files: records.map(presentFile) });
      }
    }),
    linkErrors,
  );

  return router;
}
