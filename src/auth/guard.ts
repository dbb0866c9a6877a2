import type { Request, RequestHandler } from 'express';
import { AppError, BadRequest, Forbidden, Unauthorized } from '../errors';
import { OWNER } from '../http/owner';
import { fromAnotherOrigin } from '../web/same-origin';
import type { Authenticator } from './authenticator';
import { allows, type Principal } from './principal';
import { accessFor, uploadOnlyAllows } from './route-table';

/** Methods that change nothing: a session cookie counts on them whoever started the request. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

declare global {
  namespace Express {
    interface Request {
      /** Whose files this request may see and change. */
      owner: string;
      /** Who is calling, when the route needed (or the request sent) credentials. */
      principal?: Principal;
    }
  }
}

/**
 * A `service` key acts for any owner it names in `X-Owner`; anyone else acts for themselves, and
 * an `X-Owner` naming someone else is refused rather than ignored, so a misconfigured client
 * can't mistake its own files for another owner's.
 */
function ownerFor(req: Request, principal: Principal): string {
  const named = req.get('x-owner');
  if (named === undefined || named === principal.owner) return principal.owner;
  if (!OWNER.test(named)) throw new BadRequest('X-Owner must be 1-128 characters of letters, digits, ".", "_", "@" or "-".', 'invalid_owner');
  if (principal.scope !== 'service') throw new Forbidden('Only a service key may act for another owner with X-Owner.', 'owner_not_allowed');
  return named;
}

/**
 * Decides, before any route runs, whether the request may reach it: by the route table, the
 * caller's credentials and their scope; and sets `req.owner`. A path no route serves still needs
 * credentials (its 404 tells a stranger nothing).
 */
export function guard(auth: Authenticator): RequestHandler {
  return async (req, _res, next) => {
    const access = accessFor(req.method, req.path);
    if (access === 'public') return next();
    const principal = await auth.principal(req, { metrics: access === 'metrics' });
    if (!principal) {
      if (access === 'optional') return next();
      throw new Unauthorized('This needs credentials: Authorization: Bearer <API key or token>.', 'unauthenticated');
    }
    if (access === 'metrics') {
      if (principal.via !== 'metrics_token' && principal.via !== 'dev' && principal.scope !== 'service') {
        throw new Forbidden('GET /metrics needs METRICS_TOKEN or a service key.', 'insufficient_scope');
      }
    } else if (access !== undefined && access !== 'optional' && !allows(principal.scope, access)) {
      throw new Forbidden(`This needs a ${access} key or token; yours is ${principal.scope}.`, 'insufficient_scope');
    }
    if (principal.upload && !uploadOnlyAllows(req.method, req.path)) {
      throw new Forbidden('This session comes from an upload link: it may only upload files.', 'insufficient_scope');
    }
    // A browser sends the session cookie with whatever a page asks for; SameSite=Strict keeps
    // other sites' requests from carrying it, and this keeps other origins of the same site (and
    // browsers without SameSite) from using it to change anything (CSRF). Bearer tokens are
    // never sent by a browser on its own, so they need no such check.
    if (principal.via === 'session' && !SAFE_METHODS.has(req.method) && fromAnotherOrigin(req)) {
      throw new AppError(403, 'cross_site_form', 'This request was sent from another site or origin, so it was refused: the page session counts only for requests from the page itself.');
    }
    req.principal = principal;
    req.owner = ownerFor(req, principal);
    // On the request's own logger (shared with its completion line): every line says who called.
    req.log.setBindings({ auth: `${principal.via}:${principal.id}`, owner: req.owner });
    next();
  };
}
