import type { RequestHandler } from 'express';
import { rateLimit } from 'express-rate-limit';
import { TooManyRequests } from '../errors';

/**
 * Failed authentication attempts (401) are limited per client address, so tokens can't be
 * guessed at speed; requests that authenticate don't count. Over the limit, the address gets
 * 429 with Retry-After until the window moves on.
 */
export function authFailureLimit(options: { max: number; windowMs: number }): RequestHandler {
  return rateLimit({
    windowMs: options.windowMs,
    limit: options.max,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    skipSuccessfulRequests: true,
    requestWasSuccessful: (_req, res) => res.statusCode !== 401,
    handler: (_req, _res, next) => next(new TooManyRequests('Too many failed attempts to authenticate from this address; try again later.', 'too_many_attempts')),
  });
}
