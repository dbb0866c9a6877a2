import type { Response } from 'express';
import { create as contentDisposition } from 'content-disposition';
import type { FileRecord } from '../catalog/files';
import type { Presigner } from '../storage/presign';

/**
 * Answers 302 to a presigned GET that makes the bucket send the same Content-Disposition
 * (RFC 6266/5987 encoded) and Content-Type a proxied download would; ranges and conditional
 * requests are then the bucket's to answer.
 */
export async function redirectToPresigned(res: Response, store: Presigner, record: FileRecord, expiresIn: number): Promise<void> {
  const url = await store.presignGet(record.key, {
    expiresIn,
    responseContentDisposition: contentDisposition(record.name, { type: 'attachment' }),
    responseContentType: record.content_type,
  });
  // The URL stops working after `expiresIn`: nobody may cache the redirect.
  res.setHeader('Cache-Control', 'no-store');
  res.redirect(302, url);
}
