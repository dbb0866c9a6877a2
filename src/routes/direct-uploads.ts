import express, { Router } from 'express';
import type { z } from 'zod';
import { Unprocessable } from '../errors';
import type { DirectUploads, DirectUploadTicket, PartUrl } from '../uploads/direct-upload';
import { presentFile } from './present';
import { directUploadRequest as uploadRequest, completeUploadRequest, partUrlsQuery } from '../api/schemas';

function parse<T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`);
    throw new Unprocessable(`The ${what} is invalid (${problems.join('; ')}).`, 'invalid_upload_request');
  }
  return parsed.data;
}

function presentParts(id: string, parts: PartUrl[], nextPart: number | null) {
  return { parts, next: nextPart === null ? null : `/v1/uploads/${id}/parts?from=${nextPart}` };
}

function presentUpload(ticket: DirectUploadTicket) {
  const expiresAt = ticket.expiresAt.toISOString();
  if (ticket.method === 'PUT') return { method: ticket.method, url: ticket.url, headers: ticket.headers, expiresAt };
  const { partSize, partCount, parts, nextPart } = ticket;
  return { method: ticket.method, partSize, partCount, ...presentParts(ticket.record.id, parts, nextPart), expiresAt };
}

/**
 * `POST /v1/uploads` {name, size, contentType, sha256?}: a pending record and where to PUT its
 * bytes (one presigned PUT, or, asked for or past 5 GiB, presigned part URLs).
 * `GET /v1/uploads/:id/parts?from=N`: the next batch of part URLs.
 * `POST /v1/uploads/:id/complete` {parts?}: checks the uploaded object and makes the record ready.
 * `DELETE /v1/uploads/:id`: cancels a pending upload, its parts and object.
 */
export function directUploadsRouter(direct: DirectUploads): Router {
  const router = Router();

  router.post('/uploads', express.json({ limit: '16kb' }), async (req, res) => {
    const ticket = await direct.create(req.owner, parse(uploadRequest, req.body, 'upload request'));
    const { id } = ticket.record;
    res.status(201).json({
      file: presentFile(ticket.record),
      upload: presentUpload(ticket),
      links: { complete: `/v1/uploads/${id}/complete`, cancel: `/v1/uploads/${id}` },
    });
  });

  router.get('/uploads/:id/parts', async (req, res) => {
    const { from } = parse(partUrlsQuery, req.query, 'query');
    const { record, parts, nextPart, expiresAt } = await direct.partUrls(req.owner, req.params.id, from);
    res.json({ ...presentParts(record.id, parts, nextPart), expiresAt: expiresAt.toISOString() });
  });

  // 10,000 parts of about 60 bytes each.
  router.post('/uploads/:id/complete', express.json({ limit: '1mb' }), async (req, res) => {
    const body = parse(completeUploadRequest, req.body ?? {}, 'completion');
    res.json(presentFile(await direct.complete(req.owner, req.params.id, body.parts)));
  });

  router.delete('/uploads/:id', async (req, res) => {
    await direct.cancel(req.owner, req.params.id);
    res.status(204).end();
  });

  return router;
}
