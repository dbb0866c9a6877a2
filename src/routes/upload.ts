import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express';
import multer from 'multer';
import type { Logger } from 'pino';
import type { FileRecord } from '../catalog/files';
import type { Config } from '../config';
import type { Files } from '../files/files';
import { BadRequest, Busy, UnsupportedMediaType } from '../errors';
import { takeOverBodyTimeout } from '../http/body-timeout';
import type { ServiceMetrics } from '../metrics/metrics';
import { outcomeOf } from '../metrics/outcome';
import { typeAllowed } from '../uploads/content-types';
import { StoreStorageEngine, type UploadedFile } from '../uploads/storage-engine';
import type { UploadSlots } from '../uploads/upload-slots';
import { presentFile } from './present';

/** Answers a stored upload; the API's is 201 JSON, the page's a redirect back to itself. */
export type UploadResponder = (req: Request, res: Response, records: FileRecord[]) => void;

const sendCreated: UploadResponder = (_req, res, records) => {
  res.status(201).json({ files: records.map(presentFile) });
};

/**
 * `POST /v1/files`: multipart/form-data with one or more `file` fields. Each part streams into the
 * store (see StoreStorageEngine); only when every part is stored are the records published, in
 * one transaction, so a request either adds all its files or none.
 */
export function uploadFiles(
  deps: { uploads: Config['uploads']; uploadSlots: UploadSlots; files: Files; log: Logger; metrics: ServiceMetrics },
  respond: UploadResponder = sendCreated,
): (RequestHandler | ErrorRequestHandler)[] {
  const { uploads } = deps;
  const engine = new StoreStorageEngine(deps);
  // multer passes `fileHwm` to busboy but its types don't list it. A 1 MiB buffer per file part
  // means fewer, larger writes to the store (measured in `npm run bench`: about 10% faster).
  const options: multer.Options & { fileHwm: number } = {
    storage: engine,
    // Browsers send file names as raw UTF-8; busboy would otherwise read them as latin1.
    defParamCharset: 'utf8',
    fileHwm: 1024 * 1024,
    limits: {
      fileSize: uploads.maxBytes,
      files: uploads.maxFiles,
      fields: 100,
      fieldSize: 64 * 1024,
      parts: uploads.maxFiles + 100,
    },
    fileFilter(_req, file, accept) {
      const type = file.mimetype || 'application/octet-stream';
      if (uploads.allowedContentTypes.length > 0 && !typeAllowed(uploads.allowedContentTypes, type)) {
        return accept(
          new UnsupportedMediaType(
            `Files of type ${type} are not accepted (allowed: ${uploads.allowedContentTypes.join(', ')}).`,
            'unsupported_file_type',
          ),
        );
      }
      accept(null, true);
    },
  };
  const parse = multer(options).array('file');

  const requireMultipart: RequestHandler = (req, _res, next) => {
    if (!req.is('multipart/form-data')) {
      return next(
        new UnsupportedMediaType('Send multipart/form-data with one or more "file" fields.', 'multipart_required'),
      );
    }
    next();
  };

  /** A slot among the uploads in flight (UPLOADS_PER_CLIENT, UPLOADS_MAX), held until the upload is answered and cleaned up. */
  const takeSlot: RequestHandler = (req, res, next) => {
    const slot = deps.uploadSlots.take(req.ip ?? req.socket.remoteAddress ?? 'unknown');
    if (slot instanceof Busy) {
      // The body is not read: the connection can't carry another request after this answer.
      res.setHeader('Connection', 'close');
      return next(slot);
    }
    res.once('close', () => void engine.settled(req).then(slot.release));
    next();
  };

  /**
   * multer answers only once the body has ended, and the body of a stalled client never does. When
   * it stops arriving for BODY_IDLE_TIMEOUT, the engine stops and discards every part of it, and
   * the request is answered 408 `body_timeout` once that is done; the connection is then closed.
   */
  const parseBody: RequestHandler = (req, res, next) => {
    let passed = false;
    const proceed = (err?: unknown) => {
      if (passed) return;
      passed = true;
      next(err);
    };
    takeOverBodyTimeout(req, (err) => {
      res.setHeader('Connection', 'close');
      engine.abort(req, err);
      void engine.settled(req).then(() => proceed(err));
    });
    parse(req, res, proceed);
  };

  const finish = async (req: Request, res: Response) => {
    const files = (req.files ?? []) as UploadedFile[];
    if (files.length === 0) throw new BadRequest('The form has no "file" field with a file in it.', 'no_files');
    const started = res.locals.startedAt as number;
    let updatedAt: string;
    try {
      updatedAt = await deps.files.publish(req.owner, files.map(({ record, size, sha256 }) => ({ id: record.id, size, sha256 })));
    } catch (err) {
      await Promise.allSettled(files.map((f) => deps.files.discard(f.record)));
      throw err;
    }
    // What publish wrote, without reading each record back.
    const records = files.map((f): FileRecord => ({ ...f.record, status: 'ready', size: f.size, sha256: f.sha256, updated_at: updatedAt }));
    for (const f of files) {
      deps.metrics.uploadStored(f.size);
      req.log.info(
        { event: 'upload', fileId: f.record.id, owner: req.owner, size: f.size, durationMs: Date.now() - started, outcome: 'stored' },
        'upload stored',
      );
    }
    respond(req, res, records);
  };

  const markStart: RequestHandler = (_req, res, next) => {
    res.locals.startedAt = Date.now();
    next();
  };

  const failed: ErrorRequestHandler = async (err, req, res, next) => {
    await engine.settled(req);
    deps.metrics.uploadFailed(outcomeOf(err));
    req.log.warn(
      { event: 'upload', owner: req.owner, durationMs: Date.now() - (res.locals.startedAt as number), outcome: 'failed', err },
      'upload failed',
    );
    next(err);
  };

  return [markStart, requireMultipart, takeSlot, parseBody, finish, failed];
}
