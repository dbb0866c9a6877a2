import type { Request } from 'express';
import { BadRequest } from '../errors';

const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 200;

/** `?limit=` (1-200, default 50) and `?cursor=` of a list endpoint. */
export function pageQuery(query: Request['query']): { limit: number; cursor?: string } {
  const limit = query.limit === undefined ? DEFAULT_LIMIT : Number(query.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    throw new BadRequest(`limit must be a whole number from 1 to ${MAX_LIMIT}.`, 'invalid_limit');
  }
  return { limit, cursor: typeof query.cursor === 'string' ? query.cursor : undefined };
}
