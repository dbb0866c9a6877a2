import type { RequestHandler } from 'express';
import { MemoryStore, type Options } from 'express-rate-limit';
import type { Logger } from 'pino';
import type { TrustProxy } from '../config/proxy';
import { TooManyRequests } from '../errors';

const UNTRUSTED_FORWARDED =
  'requests carry X-Forwarded-For but TRUST_PROXY is off, so failed attempts are counted per proxy, not per client: behind a proxy, set TRUST_PROXY to the number of proxies in front (1 for one router)';
const PERMISSIVE =
  'TRUST_PROXY=true believes any X-Forwarded-For, so a client can pick the address its failed attempts count against: set the number of proxies in front instead (1 for one router)';

/**
 * Failed authentication attempts (401) are limited per client address, so tokens can't be
 * guessed at speed. Only a 401 actually answered counts, once answered: requests still in flight
 * (many uploads at once from one address, or behind one proxy) and requests whose client went away
 * (a timed-out body, a dropped connection) are no failed attempts. (express-rate-limit's
 * `skipSuccessfulRequests` counts every request when it starts and takes it back only when a
 * response finishes, so either would lock an address out.) Over the limit, the address gets 429
 * with Retry-After until the window moves on.
 */
export function authFailureLimit(options: { max: number; windowMs: number; trustProxy: TrustProxy }, log: Logger): RequestHandler {
  const failures = new MemoryStore();
  failures.init({ windowMs: options.windowMs } as Options);
  // The address decides whose attempts count: say, once, when the proxy setting makes it wrong.
  if (options.trustProxy === true) log.warn({ event: 'auth.rate_limit_config', code: 'trust_proxy_permissive' }, PERMISSIVE);
  let warnedForwarded = false;
  return (req, res, next) => {
    if (!warnedForwarded && options.trustProxy === false && req.headers['x-forwarded-for'] !== undefined) {
      warnedForwarded = true;
      log.warn({ event: 'auth.rate_limit_config', code: 'forwarded_for_untrusted' }, UNTRUSTED_FORWARDED);
    }
    const address = req.ip ?? req.socket.remoteAddress ?? 'unknown';
    failures.get(address).then((seen) => {
      if (seen && seen.totalHits >= options.max) {
        const resetAt = seen.resetTime?.getTime() ?? Date.now() + options.windowMs;
        res.setHeader('Retry-After', String(Math.max(1, Math.ceil((resetAt - Date.now()) / 1000))));
        return next(new TooManyRequests('Too many failed attempts to authenticate from this address; try again later.', 'too_many_attempts'));
      }
      res.once('finish', () => {
        if (res.statusCode === 401) void failures.increment(address);
      });
      next();
    }, next);
  };
}
