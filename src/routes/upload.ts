import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express';
import multer, { MulterError } from 'multer';
import type { Logger } from 'pino';
import type { FileRecord } from '../catalog/files';
import type { Config } from '../config';
import type { Files } from '../files/files';
import type { UploadGrant } from '../auth/principal';
import { BadRequest, Busy, PayloadTooLarge, UnsupportedMediaType } from '../errors';
import { takeOverBodyTimeout } from '../http/body-timeout';
import { lingerAfterAnswer } from '../http/linger';
import type { ServiceMetrics } from '../metrics/metrics';
import { outcomeOf } from '../metrics/outcome';
import { EXPIRES_IN_HEADER, lifetimeFrom } from '../files/lifetime';
import { typeAllowed } from '../uploads/content-types';
import { type UploadLimits, uploadLimitsFor } from '../uploads/limits';
import { StoreStorageEngine, type UploadedFile } from '../uploads/storage-engine';
import type { UploadSlots } from '../uploads/upload-slots';
import { presentFile } from './present';

/** Answers a stored upload; the API's is 201 JSON, the page's a redirect back to itself. */
export type UploadResponder = (req: Request, res: Response, records: FileRecord[]) => void;

const sendCreated: UploadResponder = (_req, res, records) => {
  res.status(201).json({ files: records.map(presentFile) });
};

/**
 * How long the files `req` uploads are kept once ready (ms; undefined: until deleted): what an
 * upload link fixes, else the form's `expiresIn` (of the fields read so far), else the
 * Stowage-Expires-In header. An invalid value throws 400 `invalid_expires_in`.
 */
export function requestLifetime(req: Request): number | undefined {
  const fixed = req.principal?.upload?.lifetimeMs;
  if (fixed) return fixed;
  const field = (req.body as Record<string, unknown> | undefined)?.expiresIn;
  if (field !== undefined) return lifetimeFrom(field, 'expiresIn');
  const header = req.headers[EXPIRES_IN_HEADER];
  return header === undefined ? undefined : lifetimeFrom(header, 'The Stowage-Expires-In header');
}

/**
 * A size or count refused because an upload link allows less than the server: said in the link's
 * terms (the server's own limits are explained by the error handler, naming its variables).
 */
function linkLimitError(err: unknown, uploads: UploadLimits, grant: UploadGrant | undefined): PayloadTooLarge | undefined {
  if (!grant || !(err instanceof MulterError)) return undefined;
  if (err.code === 'LIMIT_FILE_SIZE' && grant.maxBytes < uploads.maxBytes) {
    return new PayloadTooLarge(`A file is larger than this upload link allows (${grant.maxBytes} bytes).`, 'file_too_large');
  }
  if (err.code === 'LIMIT_FILE_COUNT' && grant.maxFiles < uploads.maxFiles) {
    return new PayloadTooLarge(`This upload link allows at most ${grant.maxFiles} files per upload.`, 'too_many_files');
  }
  return undefined;
}

/**
 * `POST /v1/files`: multipart/form-data with one or more `file` fields. Each part streams into the
 * store (see StoreStorageEngine); only when every part is stored are the records published, in
 * one transaction, so a request either adds all its files or none. A caller holding an upload
 * link's grant (the link itself, or the page session it opened) gets the link's limits.
 */
export function uploadFiles(
  deps: { uploads: Config['uploads']; uploadSlots: UploadSlots; files: Files; log: Logger; metrics: ServiceMetrics },
  respond: UploadResponder = sendCreated,
): (RequestHandler | ErrorRequestHandler)[] {
  const { uploads } = deps;
  const engine = new StoreStorageEngine({ ...deps, lifetimeOf: requestLifetime });
  /** Refuses a type that `allowed` (when not empty) doesn't list. */
  const refused = (allowed: string[], type: string) =>
    allowed.length > 0 && !typeAllowed(allowed, type)
      ? new UnsupportedMediaType(`Files of type ${type} are not accepted (allowed: ${allowed.join(', ')}).`, 'unsupported_file_type')
      : undefined;
  const parser = (limits: UploadLimits) => {
    // multer passes `fileHwm` to busboy but its types don't list it. A 1 MiB buffer per file part
    // means fewer, larger writes to the store (measured in `npm run bench`: about 10% faster).
    const options: multer.Options & { fileHwm: number } = {
      storage: engine,
      // Browsers send file names as raw UTF-8; busboy would otherwise read them as latin1.
      defParamCharset: 'utf8',
      fileHwm: 1024 * 1024,
      limits: {
        fileSize: limits.maxBytes,
        files: limits.maxFiles,
        fields: 100,
        fieldSize: 64 * 1024,
        parts: limits.maxFiles + 100,
      },
      fileFilter(req, file, accept) {
        const type = file.mimetype || 'application/octet-stream';
        // The server's types always apply; an upload link's narrow them further.
        const grant = req.principal?.upload;
        const error = refused(uploads.allowedContentTypes, type) ?? (grant && refused(grant.allowedTypes, type));
        if (error) return accept(error);
        accept(null, true);
      },
    };
    return multer(options).array('file');
  };
  const serverParse = parser(uploads);
  // An upload link's limits differ per link: its parser is made per request (a few objects).
  const parse: RequestHandler = (req, res, next) => {
    const grant = req.principal?.upload;
    (grant ? parser(uploadLimitsFor(uploads, grant)) : serverParse)(req, res, next);
  };

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
   * multer answers only once the body has ended, and the body of a stalled client never does; nor
   * need a client send the rest of a large file once the store has failed. When the body stops
   * arriving for BODY_IDLE_TIMEOUT (408 `body_timeout`), or a part fails on the server's side (503
   * `store_unavailable` for a store that went away), the engine stops and discards every part,
   * and the request is answered once that is done, without waiting for the rest of the body; the
   * connection is then closed (see lingerAfterAnswer).
   */
  const parseBody: RequestHandler = (req, res, next) => {
    let passed = false;
    const proceed = (err?: unknown) => {
      if (passed) return;
      passed = true;
      next(err);
    };
    const endNow = (err: unknown) => {
      // The rest of the body is never used: the connection can't carry another request.
      if (!req.complete) {
        res.setHeader('Connection', 'close');
        lingerAfterAnswer(res);
      }
      engine.abort(req, err instanceof Error ? err : new Error(String(err)));
      void engine.settled(req).then(() => proceed(err));
    };
    takeOverBodyTimeout(req, endNow);
    engine.whenServerFails(req, endNow);
    parse(req, res, proceed);
  };

  /** A header or link lifetime is checked before any byte is read (a form field, as it arrives). */
  const checkLifetime: RequestHandler = (req, _res, next) => {
    requestLifetime(req);
    next();
  };

  const finish = async (req: Request, res: Response) => {
    const files = (req.files ?? []) as UploadedFile[];
    if (files.length === 0) throw new BadRequest('The form has no "file" field with a file in it.', 'no_files');
    const started = res.locals.startedAt as number;
    let updatedAt: string;
    let lifetimeMs: number | undefined;
    try {
      // An `expiresIn` sent after some files reached them only now.
      lifetimeMs = requestLifetime(req);
      const late = files.filter((f) => lifetimeMs !== undefined && Number(f.record.lifetime_ms) !== lifetimeMs).map((f) => f.record.id);
      if (lifetimeMs !== undefined && late.length > 0) await deps.files.setLifetime(late, lifetimeMs);
      // What each record reserved and its lifetime, as this request wrote them: publishing needn't read them back.
      updatedAt = await deps.files.publish(
        req.owner,
        files.map(({ record, size, sha256 }) => ({ id: record.id, size, sha256, reserved: Number(record.size), lifetimeMs: lifetimeMs ?? (record.lifetime_ms === null ? null : Number(record.lifetime_ms)) })),
      );
    } catch (err) {
      await deps.files.discardUnpublished(files.map((f) => f.record), err);
      throw err;
    }
    // What publish wrote, without reading each record back.
    const deleteAt = lifetimeMs === undefined ? null : new Date(Date.parse(updatedAt) + lifetimeMs).toISOString();
    const records = files.map((f): FileRecord => ({ ...f.record, status: 'ready', size: f.size, sha256: f.sha256, lifetime_ms: null, delete_at: deleteAt, updated_at: updatedAt }));
    for (const f of files) {
      deps.metrics.uploadStored(f.size);
      req.log.info(
        { event: 'upload', fileId: f.record.id, size: f.size, durationMs: Date.now() - started, outcome: 'stored' },
        'upload stored',
      );
    }
    respond(req, res, records);
  };

  const markStart: RequestHandler = (_req, res, next) => {
    res.locals.startedAt = Date.now();
    next();
  };

  const failed: ErrorRequestHandler = async (err: unknown, req, res, next) => {
    await engine.settled(req);
    err = linkLimitError(err, uploads, req.principal?.upload) ?? err;
    const code = outcomeOf(err);
    deps.metrics.uploadFailed(code);
    // The code the client saw; the error handler logs a server-side failure with its stack.
    req.log.warn({ event: 'upload', durationMs: Date.now() - (res.locals.startedAt as number), outcome: 'failed', code }, 'upload failed');
    next(err);
  };

  return [markStart, requireMultipart, checkLifetime, takeSlot, parseBody, finish, failed];
}
