import type { RequestHandler } from 'express';
import helmet, { strictTransportSecurity } from 'helmet';

/** As helmet writes it (no spaces after the semicolons). */
export const API_CONTENT_SECURITY_POLICY = "default-src 'none';frame-ancestors 'none';sandbox";

/** HSTS as helmet words it; sent only over https (req.secure, which TRUST_PROXY makes right behind a router). */
export const HSTS = 'max-age=31536000; includeSubDomains';

/**
 * What every response may be loaded as and how long browsers must use https. The API answers
 * JSON and attachments, never pages, so its policy is the strictest there is: nothing loads,
 * nothing frames it, scripts never run (`sandbox`) even if a response were rendered. The
 * upload page replaces this Content-Security-Policy with its own (web/security-headers.ts sets
 * the header again, after this, so there is one). `Cross-Origin-Resource-Policy: same-origin`
 * bears only on `no-cors` loads from other origins (an `<img src>`); a CORS fetch from an app in
 * CORS_ORIGINS is not affected (checked in Chromium, test/auth/cors.test.ts).
 */
export function securityHeaders(): RequestHandler {
  const headers = helmet({
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"], sandbox: [] } },
    crossOriginResourcePolicy: { policy: 'same-origin' },
    referrerPolicy: { policy: 'no-referrer' },
    xFrameOptions: { action: 'deny' },
    // A browser ignores HSTS over plain http; sent there it would only mislead a reader of headers.
    strictTransportSecurity: false,
  });
  const hsts = strictTransportSecurity({ maxAge: 31536000, includeSubDomains: true });
  return (req, res, next) => headers(req, res, () => (req.secure ? hsts(req, res, next) : next()));
}
