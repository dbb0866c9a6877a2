import { BadRequest } from '../errors';

/** Where a newest-first page ended: the last row's creation time and id (ties broken by id). */
export interface PagePosition {
  createdAt: string;
  id: string;
}

export function encodeCursor(position: PagePosition): string {
  return Buffer.from(`${position.createdAt}|${position.id}`).toString('base64url');
}

export function decodeCursor(cursor: string): PagePosition {
  const [createdAt, id] = Buffer.from(cursor, 'base64url').toString().split('|');
  if (!createdAt || !id) throw new BadRequest('The cursor is not one this API returned.', 'invalid_cursor');
  return { createdAt, id };
}
