import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express';
import { MulterError } from 'multer';
import { isDatabaseUnavailable } from '../catalog/unavailable';
import { AppError, BadRequest, Busy, DatabaseUnavailable, InsufficientStorage, isOutOfSpace, NO_SPACE_MESSAGE, NotFound, PayloadTooLarge, StoreUnavailable } from '../errors';
import { bodyTimedOut } from './body-timeout';

/** Headers a failed download may have set for its body that must not describe the JSON error. */
const CONTENT_HEADERS = ['Content-Type', 'Content-Disposition', 'Content-Length', 'Content-Range', 'ETag', 'Last-Modified', 'Accept-Ranges'];

/** Limits named in messages; a metrics label needs only the code, so they are optional. */
type Limits = { maxBytes: number; maxFiles: number };

function fromMulter(err: MulterError, limits?: Limits): AppError {
  switch (err.code) {
    case 'LIMIT_FILE_SIZE':
      return new PayloadTooLarge(
        `${err.field === 'file' ? 'A file' : 'A part'} is larger than the limit${limits ? ` of ${limits.maxBytes} bytes` : ''} (MAX_UPLOAD_BYTES).`,
        'file_too_large',
      );
    case 'LIMIT_FILE_COUNT':
      return new PayloadTooLarge(`At most ${limits?.maxFiles ?? 'MAX_FILES_PER_REQUEST'} files can be sent in one request.`, 'too_many_files');
    case 'LIMIT_UNEXPECTED_FILE':
      return new BadRequest(`Files must be sent in fields named "file" (got "${err.field}").`, 'unexpected_field');
    default:
      return new BadRequest(`The multipart form was rejected: ${err.message}.`, 'malformed_multipart');
  }
}

/** Maps whatever went wrong to an AppError; anything unexpected becomes a bare internal error. */
export function toAppError(err: unknown, limits?: Limits): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof MulterError) return fromMulter(err, limits);
  if (isBusboyError(err)) return new BadRequest(`The multipart form is malformed: ${err.message}.`, 'malformed_multipart');
  // A full disk under the catalog (SQLite: "database or disk is full") or a temp copy is the
  // same answer as a full store: 507, not an internal error.
  if (isOutOfSpace(err)) return new InsufficientStorage(NO_SPACE_MESSAGE, { cause: err });
  // PostgreSQL restarting or gone: the client should come back, not report a bug.
  if (isDatabaseUnavailable(err)) return new DatabaseUnavailable({ cause: err });
  if (isBodyParserError(err)) {
    return err.status === 413
      ? new PayloadTooLarge('The JSON body is too large.')
      : new BadRequest('The request body is not valid JSON.', 'invalid_json');
  }
  return new AppError(500, 'internal_error', 'Something went wrong on our side. Try again, and report the requestId if it persists.');
}

/** Writes an error response once headers are known to be unsent; the API's is the JSON shape. */
export type ErrorResponder = (req: Request, res: Response, error: AppError) => void;

export const sendJson: ErrorResponder = (req, res, error) => {
  res.status(error.status).json({ error: { code: error.code, message: error.message, requestId: String(req.id) } });
};

/**
 * Turns whatever went wrong into the one error shape; internal details go to the log only.
 * `respond` lets a human-facing route (the upload page) render the same error as HTML.
 */
export function errorHandler(limits: { maxBytes: number; maxFiles: number }, respond: ErrorResponder = sendJson): ErrorRequestHandler {
  return (err, req, res, _next) => {
    // A body cut off for its silence fails whatever was reading it ("request aborted"): say why.
    const error = toAppError(bodyTimedOut(req) ?? err, limits);
    if (error.status >= 500) req.log.error({ err }, 'request failed');
    else req.log.info({ code: error.code }, error.message);

    if (res.headersSent) {
      res.destroy();
      return;
    }
    for (const header of CONTENT_HEADERS) {
      if (!(header === 'Content-Range' && error.status === 416)) res.removeHeader(header);
    }
    // RFC 6750: tell the client which scheme to use, and why a token it sent was refused.
    if (error.status === 401) res.setHeader('WWW-Authenticate', error.code === 'unauthenticated' ? 'Bearer' : `Bearer error="invalid_token"`);
    if (error.code === 'insufficient_scope') res.setHeader('WWW-Authenticate', 'Bearer error="insufficient_scope"');
    if (error instanceof Busy || error instanceof StoreUnavailable || error instanceof DatabaseUnavailable) res.setHeader('Retry-After', String(error.retryAfterS));
    respond(req, res, error);
  };
}

export const notFoundRoute: RequestHandler = (req, _res, next) => {
  next(new NotFound(`No route for ${req.method} ${req.path}.`, 'route_not_found'));
};

function isBusboyError(err: unknown): err is Error {
  return err instanceof Error && /^(Malformed|Unexpected end of (form|multipart)|Multipart: Boundary not found|Unsupported content type)/i.test(err.message);
}

function isBodyParserError(err: unknown): err is Error & { status: number; type: string } {
  return typeof (err as { type?: unknown })?.type === 'string' && typeof (err as { status?: unknown }).status === 'number';
}
