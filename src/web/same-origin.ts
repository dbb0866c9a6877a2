import type { Request, RequestHandler } from 'express';
import { AppError } from '../errors';

/**
 * Whether a browser says the request was started by another site (or another origin of this
 * site). Browsers say where a request comes from in Sec-Fetch-Site; older ones only in Origin.
 * Clients that send neither are not browsers and cannot be tricked into sending anything.
 */
export function fromAnotherOrigin(req: Request): boolean {
  const site = req.get('sec-fetch-site');
  const origin = req.get('origin');
  return site !== undefined ? site !== 'same-origin' && site !== 'none' : origin !== undefined && originHost(origin) !== req.get('host');
}

/**
 * The page's form posts change data without any header a cross-site form could not send, so they
 * must come from this origin (CSRF).
 */
export const sameOriginForm: RequestHandler = (req, _res, next) => {
  if (fromAnotherOrigin(req)) {
    return next(new AppError(403, 'cross_site_form', 'Form posts are only accepted from this page.'));
  }
  next();
};

function originHost(origin: string): string | undefined {
  try {
    return new URL(origin).host;
  } catch {
    return undefined;
  }
}
