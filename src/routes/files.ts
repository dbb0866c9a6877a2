import express, { Router } from 'express';
import type { Logger } from 'pino';
import type { Config } from '../config';
import { fileUpdateRequest, MAX_METADATA_BYTES, MAX_METADATA_KEYS } from '../api/schemas';
import { BadRequest, Conflict, NotFound, PayloadTooLarge } from '../errors';
import type { FileUpdate } from '../files/files';
import type { Files } from '../files/files';
import { pageQuery } from '../http/paging';
import type { ServiceMetrics } from '../metrics/metrics';
import { downloadContent } from './download';
import { presentFile } from './present';
import { uploadFiles } from './upload';
import type { UploadSlots } from '../uploads/upload-slots';

export interface FilesRouteDeps {
  uploads: Config['uploads'];
  /** Shared with the page's upload form: one count of uploads in flight per process. */
  uploadSlots: UploadSlots;
  downloads: Config['downloads'];
  files: Files;
  log: Logger;
  metrics: ServiceMetrics;
}

export function filesRouter(deps: FilesRouteDeps): Router {
  const { files } = deps;
  const router = Router();

  router.post('/files', ...uploadFiles(deps));

  router.get('/files', async (req, res) => {
    const page = await files.list(req.owner, pageQuery(req.query));
    res.json({ files: page.files.map(presentFile), nextCursor: page.nextCursor ?? null });
  });

  router.get('/files/:id', async (req, res) => {
    const record = await files.get(req.owner, req.params.id);
    if (!record) throw new NotFound('No file with that id.');
    res.json(presentFile(record));
  });

  router.patch('/files/:id', express.json({ limit: '16kb' }), async (req, res) => {
    let update: FileUpdate;
    try {
      update = parseUpdate(req.body);
    } catch (err) {
      // Another owner's file answers as an id that never existed, whatever the body.
      if (!(await files.get(req.owner, req.params.id))) throw new NotFound('No file with that id.');
      throw err;
    }
    res.json(presentFile(await files.update(req.owner, req.params.id, update)));
  });

  const content = downloadContent(deps);
  router.get('/files/:id/content', content);
  router.head('/files/:id/content', content);

  router.delete('/files/:id', async (req, res) => {
    await deleteOwnedFile(files, req.owner, req.params.id, req.log);
    res.status(204).end();
  });

  return router;
}

/** A PATCH body: 400 `invalid_file_update` naming each problem, 413 `metadata_too_large` past the caps. */
function parseUpdate(body: unknown): FileUpdate {
  const parsed = fileUpdateRequest.safeParse(body ?? {});
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`);
    throw new BadRequest(`The change is invalid (${problems.join('; ')}).`, 'invalid_file_update');
  }
  const { name, metadata, expiresAt } = parsed.data;
  if (metadata) {
    const keys = Object.keys(metadata).length;
    const bytes = Buffer.byteLength(JSON.stringify(metadata));
    if (keys > MAX_METADATA_KEYS || bytes > MAX_METADATA_BYTES) {
      throw new PayloadTooLarge(
        `Metadata takes at most ${MAX_METADATA_KEYS} keys and ${MAX_METADATA_BYTES} bytes of JSON; this has ${keys} keys and ${bytes} bytes.`,
        'metadata_too_large',
      );
    }
  }
  return { name, metadata, expiresAt: expiresAt === undefined ? undefined : expiresAt === null ? null : new Date(expiresAt) };
}

/**
 * Deletes one of the owner's files; NotFound when there is none (or it went meanwhile). A file
 * still being uploaded is refused with 409 `file_pending`: its upload owns it until it is ready
 * (or fails and removes it), and a record deleted under it would leave its bytes behind. A record
 * seen in any other status never becomes pending again.
 */
export async function deleteOwnedFile(files: Files, owner: string, id: string, log: Logger): Promise<void> {
  const record = await files.get(owner, id);
  if (!record) throw new NotFound('No file with that id.');
  if (record.status === 'pending') {
    throw new Conflict('The file is still being uploaded: delete it once it is ready, or cancel the upload.', 'file_pending');
  }
  if (!(await files.delete(record, log))) throw new NotFound('No file with that id.');
}
