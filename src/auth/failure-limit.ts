import type { RequestHandler } from 'express';
import { rateLimit } from 'express-rate-limit';
import type { Logger } from 'pino';
import { TooManyRequests } from '../errors';

/** What an operator should do about express-rate-limit's one-time configuration checks. */
const HINTS: Record<string, string> = {
  ERR_ERL_UNEXPECTED_X_FORWARDED_FOR:
    'requests carry X-Forwarded-For but TRUST_PROXY is off, so failed attempts are counted per proxy, not per client: behind a proxy, set TRUST_PROXY to the number of proxies in front (1 for one router)',
  ERR_ERL_PERMISSIVE_TRUST_PROXY:
    'TRUST_PROXY=true believes any X-Forwarded-For, so a client can pick the address its failed attempts count against: set the number of proxies in front instead (1 for one router)',
};

/**
 * Failed authentication attempts (401) are limited per client address, so tokens can't be
 * guessed at speed; requests that authenticate don't count. Over the limit, the address gets
 * 429 with Retry-After until the window moves on. The address is `req.ip`: the socket's, or
 * the client's as the proxies TRUST_PROXY names report it. The limiter's own configuration
 * warnings go to the log (once each), with what to change.
 */
export function authFailureLimit(options: { max: number; windowMs: number }, log: Logger): RequestHandler {
  const report = (error: unknown) => {
    const code = (error as { code?: unknown })?.code;
    const hint = typeof code === 'string' ? HINTS[code] : undefined;
    log.warn({ event: 'auth.rate_limit_config', code, err: hint ? undefined : error }, hint ?? 'failed-attempt limiter: configuration problem');
  };
  return rateLimit({
    windowMs: options.windowMs,
    limit: options.max,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    skipSuccessfulRequests: true,
    requestWasSuccessful: (_req, res) => res.statusCode !== 401,
    handler: (_req, _res, next) => next(new TooManyRequests('Too many failed attempts to authenticate from this address; try again later.', 'too_many_attempts')),
    logger: { warn: report, error: report },
  });
}
