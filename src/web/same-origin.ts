import type { RequestHandler } from 'express';
import { AppError } from '../errors';

/**
 * The page's form posts change data without any header a cross-site form could not send, so they
 * must come from this origin (CSRF). Browsers say where a request comes from in Sec-Fetch-Site;
 * older ones only in Origin. Clients that send neither are not browsers and cannot be tricked.
 */
export const sameOriginForm: RequestHandler = (req, _res, next) => {
  const site = req.get('sec-fetch-site');
  const origin = req.get('origin');
  const crossSite =
    site !== undefined ? site !== 'same-origin' && site !== 'none' : origin !== undefined && originHost(origin) !== req.get('host');
  if (crossSite) {
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
