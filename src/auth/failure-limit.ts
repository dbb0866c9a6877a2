import type { RequestHandler } from 'express';
import { MemoryStore, type Options } from 'express-rate-limit';
import { TooManyRequests } from '../errors';

/**
 * Failed authentication attempts (401) are limited per client address, so tokens can't be
 * guessed at speed. Only a 401 actually answered counts, once answered: requests still in flight
 * (many uploads at once from one address, or behind one proxy) and requests whose client went away
 * (a timed-out body, a dropped connection) are no failed attempts. (express-rate-limit's
 * `skipSuccessfulRequests` counts every request when it starts and takes it back only when a
 * response finishes, so either would lock an address out.) Over the limit, the address gets 429
 * with Retry-After until the window moves on.
 */
export function authFailureLimit(options: { max: number; windowMs: number }): RequestHandler {
  const failures = new MemoryStore();
  failures.init({ windowMs: options.windowMs } as Options);
  return (req, res, next) => {
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
