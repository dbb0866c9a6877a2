import type { Request } from 'express';
import { MAX_PAGE_LIMIT, pageQuerySchema } from '../api/schemas';
import { BadRequest } from '../errors';

/** `?limit=` (1-200, default 50) and `?cursor=` of a list endpoint. */
export function pageQuery(query: Request['query']): { limit: number; cursor?: string } {
  const limit = pageQuerySchema.shape.limit.safeParse(query.limit);
  if (!limit.success) {
    throw new BadRequest(`limit must be a whole number from 1 to ${MAX_PAGE_LIMIT}.`, 'invalid_limit');
  }
  return { limit: limit.data, cursor: typeof query.cursor === 'string' ? query.cursor : undefined };
}
