import { type Request, type RequestHandler, Router } from 'express';
import type { FileRecord } from '../catalog/files';
import type { Config } from '../config';
import { BadRequest, Busy, Conflict, NotFound, PayloadTooLarge, UnsupportedMediaType } from '../errors';
import type { Files } from '../files/files';
import { lifetimeFrom } from '../files/lifetime';
import { typeAllowed } from '../uploads/content-types';
import { uploadLimitsFor } from '../uploads/limits';
import { announced, type TusUploads } from '../uploads/tus/tus-uploads';
import type { UploadSlots } from '../uploads/upload-slots';
import { requestLifetime } from './upload';

export interface TusRouteDeps {
  uploads: Config['uploads'];
  /** Shared with the other uploads: a PATCH (or a creation with a body) in flight holds one. */
  uploadSlots: UploadSlots;
  files: Files;
  tus: TusUploads;
}

/**
 * `/v1/tus`: resumable uploads (tus 1.0). stowage checks who may create or touch an upload and
 * the size and type limits, answering in its own JSON errors; the tus protocol itself is
 * @tus/server's. An upload URL names a file record: another owner's answers 404.
 */
export function tusRouter({ uploads, uploadSlots, files, tus }: TusRouteDeps): Router {
  const router = Router();

  /** A slot among the uploads in flight (UPLOADS_PER_CLIENT, UPLOADS_MAX) for a request with a body, held until it is answered. */
  const takeSlot: RequestHandler = (req, res, next) => {
    // A creation without a body (the usual one) carries no upload.
    if (req.method === 'POST' && !req.headers['content-type']) return next();
    const slot = uploadSlots.take(req.ip ?? req.socket.remoteAddress ?? 'unknown');
    if (slot instanceof Busy) {
      // The body is not read: the connection can't carry another request after this answer.
      res.setHeader('Connection', 'close');
      return next(slot);
    }
    res.once('close', slot.release);
    next();
  };

  const pass = (req: Request, res: Parameters<RequestHandler>[1], created?: FileRecord) => {
    // The tus server matches the full path; the router saw it without its `/v1` mount.
    req.url = req.originalUrl;
    const checksum = req.headers['upload-checksum'];
    return tus.handle(req, res, { owner: req.owner, checksum: typeof checksum === 'string' ? checksum : undefined, log: req.log, created });
  };

  router.options('/tus', (req, res) => {
    res.setHeader('Tus-Checksum-Algorithm', 'sha256');
    return pass(req, res);
  });

  router.post('/tus', takeSlot, async (req, res) => {
    const length = req.headers['upload-length'];
    if (typeof length !== 'string' || !/^\d+$/.test(length)) {
      throw new BadRequest('Send the upload\'s size in Upload-Length (deferred lengths are not accepted).', 'upload_length_required');
    }
    const meta = announced(req.headers['upload-metadata'] as string | undefined);
    if (!meta) throw new BadRequest('Upload-Metadata is malformed: send comma-separated "key base64value" pairs.', 'bad_upload_metadata');
    const limits = uploadLimitsFor(uploads, req.principal?.upload);
    if (Number(length) > limits.maxBytes) {
      throw new PayloadTooLarge(`The file is larger than the limit of ${limits.maxBytes} bytes${req.principal?.upload ? ' of this upload link' : ' (MAX_UPLOAD_BYTES)'}.`, 'file_too_large');
    }
    // An upload link's lifetime, else the metadata's `expiresIn`, else the Stowage-Expires-In header.
    const lifetimeMs = meta.expiresIn !== undefined && !req.principal?.upload?.lifetimeMs ? lifetimeFrom(meta.expiresIn, 'Upload-Metadata expiresIn') : requestLifetime(req);
    const type = meta.filetype || 'application/octet-stream';
    for (const allowed of [uploads.allowedContentTypes, req.principal?.upload?.allowedTypes ?? []]) {
      if (allowed.length > 0 && !typeAllowed(allowed, type)) {
        throw new UnsupportedMediaType(`Files of type ${type} are not accepted (allowed: ${allowed.join(', ')}).`, 'unsupported_file_type');
      }
    }
    // The size is reserved against the owner's quota first: past it, 413 quota_exceeded.
    const created = await tus.expect(req.owner, meta, Number(length), lifetimeMs);
    await pass(req, res, created);
    // Refused by the tus server: no upload was made, and the reservation goes with the record.
    if (res.statusCode !== 201) await files.discard(created);
  });

  /** The caller's upload, still pending; a finished one is answered here (HEAD) or refused. */
  const upload: RequestHandler = async (req, res, next) => {
    const id = String(req.params.id);
    const record = await files.get(req.owner, id);
    if (!record || record.status === 'failed' || record.status === 'missing') throw new NotFound('No upload with that id.');
    if (record.status === 'pending' && req.method === 'HEAD') {
      // A finish cut short (the process stopped after the last byte): done now, once.
      const progress = await tus.progress(id);
      if (progress && progress.size !== undefined && progress.offset === progress.size) await tus.finish(record, req.log);
      else return next();
    } else if (record.status === 'pending') return next();
    if (req.method !== 'HEAD') {
      throw new Conflict(`The upload is finished: it is the file ${id} (delete it with DELETE /v1/files/${id}).`, 'upload_finished');
    }
    res.set({ 'Tus-Resumable': '1.0.0', 'Upload-Offset': String(record.size), 'Upload-Length': String(record.size), 'Cache-Control': 'no-store' });
    res.status(200).end();
  };

  router.head('/tus/:id', upload, (req, res) => pass(req, res));
  router.patch('/tus/:id', upload, takeSlot, (req, res) => pass(req, res));
  router.delete('/tus/:id', upload, async (req, res) => {
    await pass(req, res);
    // Terminated: the bytes are gone, and so goes the pending record.
    const record = res.statusCode === 204 ? await files.get(req.owner, String(req.params.id)) : undefined;
    if (record?.status === 'pending') await tus.terminated(record);
  });

  return router;
}
