import type { NextFunction, Request, Response } from 'express';
import { BadRequest } from '../errors';

declare global {
  namespace Express {
    interface Request {
      /** Whose files this request may see and change. */
      owner: string;
    }
  }
}

export const OWNER = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/;

/**
 * Until access control lands, a request names its owner with `X-Owner` (default `anonymous`).
 * Everything downstream reads `req.owner`, so tokens can replace this middleware alone.
 */
export function ownerFromHeader(req: Request, _res: Response, next: NextFunction): void {
  const header = req.get('x-owner');
  if (header !== undefined && !OWNER.test(header)) {
    return next(
      new BadRequest('X-Owner must be 1-128 characters of letters, digits, ".", "_", "@" or "-".', 'invalid_owner'),
    );
  }
  req.owner = header ?? 'anonymous';
  next();
}
