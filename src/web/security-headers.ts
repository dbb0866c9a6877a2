import type { RequestHandler } from 'express';

/**
 * The page and its assets load only from this origin and run no inline code, so an injected
 * string can at worst show up as text. Uploaded content is never on the page: downloads are
 * links to attachments (see routes/download.ts), never embedded.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

export const pageSecurityHeaders: RequestHandler = (_req, res, next) => {
  res.setHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  // For browsers that predate CSP frame-ancestors.
  res.setHeader('X-Frame-Options', 'DENY');
  next();
};
