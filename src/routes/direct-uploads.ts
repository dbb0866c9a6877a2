import express, { Router } from 'express';
import { Unprocessable } from '../errors';
import type { DirectUploads } from '../uploads/direct-upload';
import { presentFile } from './present';
import { directUploadRequest as uploadRequest } from '../api/schemas';

function parseRequest(body: unknown) {
  const parsed = uploadRequest.safeParse(body);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`);
    throw new Unprocessable(`The upload request is invalid (${problems.join('; ')}).`, 'invalid_upload_request');
  }
  return parsed.data;
}

/**
 * `POST /v1/uploads` {name, size, contentType, sha256?}: a pending record and a presigned PUT URL.
 * `POST /v1/uploads/:id/complete`: checks the uploaded object and makes the record ready.
 */
export function directUploadsRouter(direct: DirectUploads): Router {
  const router = Router();

  router.post('/uploads', express.json({ limit: '16kb' }), async (req, res) => {
    const ticket = await direct.create(req.owner, parseRequest(req.body));
    const { id } = ticket.record;
    res.status(201).json({
      file: presentFile(ticket.record),
      upload: { method: 'PUT', url: ticket.url, headers: ticket.headers, expiresAt: ticket.expiresAt.toISOString() },
      links: { complete: `/v1/uploads/${id}/complete` },
    });
  });

  router.post('/uploads/:id/complete', async (req, res) => {
    res.json(presentFile(await direct.complete(req.owner, req.params.id)));
  });

  return router;
}
