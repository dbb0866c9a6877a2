/**
 * Typed errors. Each carries the HTTP status and a stable machine-readable code; the one error
 * middleware turns them into `{"error":{"code","message","requestId"}}`. Anything that is not an
 * AppError is an internal error and its message never reaches a client.
 */
export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class BadRequest extends AppError {
  constructor(message: string, code = 'bad_request', options?: { cause?: unknown }) {
    super(400, code, message, options);
  }
}

/**
 * 401: no credentials, or ones that don't prove who the caller is. Codes: `unauthenticated`,
 * `token_expired`, `token_revoked`, `token_invalid`. Answered with `WWW-Authenticate: Bearer`.
 */
export class Unauthorized extends AppError {
  constructor(message = 'Missing or invalid credentials.', code = 'unauthenticated', options?: { cause?: unknown }) {
    super(401, code, message, options);
  }
}

/** 403: the caller is known but may not do this (`insufficient_scope`, `owner_not_allowed`, `link_invalid`). */
export class Forbidden extends AppError {
  constructor(message: string, code = 'forbidden') {
    super(403, code, message);
  }
}

/** 410: something that existed and is gone for good (an expired link). */
export class Gone extends AppError {
  constructor(message: string, code = 'gone') {
    super(410, code, message);
  }
}

/** 410: a file past its lifetime (`expiresAt`), its bytes being removed by the expiry sweep. */
export class FileExpired extends Gone {
  constructor(at: string | null) {
    super(`The file expired${at ? ` at ${at}` : ''} and is being deleted.`, 'file_expired');
  }
}

export class TooManyRequests extends AppError {
  constructor(message: string, code = 'too_many_requests') {
    super(429, code, message);
  }
}

export class NotFound extends AppError {
  constructor(message = 'Not found.', code = 'not_found') {
    super(404, code, message);
  }
}

/**
 * The one message for a file whose blob is gone, whichever path finds it (a download or HEAD, a
 * report reading its source, `doctor --fix`): the record's `statusMessage`, with status `missing`.
 */
export const FILE_MISSING_MESSAGE = 'File missing from storage. Please re-upload it.';

/** A record exists but its blob is gone from the store. */
export class FileMissing extends AppError {
  constructor(message = FILE_MISSING_MESSAGE) {
    super(404, 'file_missing', message);
  }
}

export class Conflict extends AppError {
  constructor(message: string, code = 'conflict') {
    super(409, code, message);
  }
}

/** A file kept on another Fly Machine's volume: not missing, just not readable from here. */
export class FileElsewhere extends Conflict {
  constructor(machineId: string, region: string | null, message = `The file is on machine ${machineId} (${region ?? 'unknown region'}), not on this one.`) {
    super(message, 'file_elsewhere');
  }
}

/**
 * A tus PATCH whose upload is on another Fly Machine's volume, with a body too large for Fly's
 * proxy to replay (or already replayed once): refused before a byte is read, so the upload loses
 * nothing. 421 Misdirected Request: the client should send it again with
 * `fly-force-instance-id: <machineId>` (the `Stowage-Machine` header says which).
 */
export class UploadElsewhere extends AppError {
  constructor(readonly machineId: string, region: string | null) {
    super(
      421,
      'upload_elsewhere',
      `The upload is on machine ${machineId} (${region ?? 'unknown region'}), not this one, and Fly's proxy can't replay a chunk of 1 MB or more there: send its chunks with the header fly-force-instance-id: ${machineId}.`,
    );
  }
}

export class PayloadTooLarge extends AppError {
  constructor(message: string, code = 'payload_too_large') {
    super(413, code, message);
  }
}

/**
 * 413: the upload would take its owner past their quota (QUOTA_BYTES, QUOTA_FILES, or the
 * owner's own from `stowage quotas set`). Nothing of it is kept.
 */
export class QuotaExceeded extends PayloadTooLarge {
  constructor(message: string) {
    super(message, 'quota_exceeded');
  }
}

export class UnsupportedMediaType extends AppError {
  constructor(message: string, code = 'unsupported_media_type') {
    super(415, code, message);
  }
}

export class RangeNotSatisfiable extends AppError {
  constructor(readonly size: number) {
    super(416, 'range_not_satisfiable', `The requested range is outside the file's ${size} bytes.`);
  }
}

export class Unprocessable extends AppError {
  constructor(message: string, code = 'unprocessable') {
    super(422, code, message);
  }
}

/** 408: the request body stopped arriving (BODY_IDLE_TIMEOUT) or took too long (REQUEST_TIMEOUT). */
export class BodyTimeout extends AppError {
  constructor(message: string) {
    super(408, 'body_timeout', message);
  }
}

/** 503 with Retry-After: the server takes no more of this kind of request right now (uploads in flight). */
export class Busy extends AppError {
  constructor(
    message: string,
    readonly retryAfterS = 1,
  ) {
    super(503, 'busy', message);
  }
}

/**
 * 503 with Retry-After: the store failed or did not answer in time. How long an outage lasts is
 * unknown; a few seconds lets a client retry without hammering it.
 */
export class StoreUnavailable extends AppError {
  readonly retryAfterS = 5;

  constructor(message: string, options?: { cause?: unknown }) {
    super(503, 'store_unavailable', message, options);
  }
}

/** The store's keys work but lack the permission one kind of call needs (an IAM policy written before stowage needed it). */
export class StorePermissionMissing extends StoreUnavailable {
  constructor(
    message: string,
    readonly permission: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * 503 with Retry-After: the catalog database can't be reached (PostgreSQL restarting, failing
 * over, down). Nothing was changed; the same request succeeds once it is back, without a restart.
 */
export class DatabaseUnavailable extends AppError {
  readonly retryAfterS = 5;
  constructor(options?: { cause?: unknown }) {
    super(503, 'database_unavailable', 'The database is unavailable right now. Try again in a few seconds.', options);
  }
}

/** The store has no room left (memory cap reached, disk full). */
export class InsufficientStorage extends AppError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(507, 'insufficient_storage', message, options);
  }
}

/**
 * Error codes that mean a disk or quota is full wherever they come from: the filesystem (ENOSPC,
 * EDQUOT), SQLite ("database or disk is full") and PostgreSQL (`disk_full`).
 */
const NO_SPACE_CODES = new Set(['ENOSPC', 'EDQUOT', 'SQLITE_FULL', '53100']);

/**
 * Whether `err`, or an error it was caused by, says there is no space left: a store's
 * InsufficientStorage, or a full disk under a temp file or the catalog database.
 */
export function isOutOfSpace(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof InsufficientStorage) return true;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && NO_SPACE_CODES.has(code)) return true;
  }
  return false;
}

/** What a client is told when some disk it needed (a store, the catalog, a temp copy) is full. */
export const NO_SPACE_MESSAGE = 'There is no storage space left to keep this. Try again once space has been freed.';

/** Raised by stores for a key that does not exist; routes translate it for their context. */
export class BlobNotFound extends Error {
  constructor(readonly key: string, options?: { cause?: unknown }) {
    super(`No blob at key ${key}`, options);
    this.name = 'BlobNotFound';
  }
}

/** Invalid configuration or an unusable environment at startup: one line per problem. */
export class ConfigError extends Error {
  constructor(
    readonly problems: string[],
    options?: { cause?: unknown },
  ) {
    super(problems.join('\n'), options);
    this.name = 'ConfigError';
  }
}

/**
 * An uploaded file that cannot be turned into a report: not a spreadsheet, corrupt, malformed, or
 * past a safety limit (size, rows, decompressed bytes). The message is shown to the user as is.
 */
export class SourceRejected extends Unprocessable {
  constructor(message: string) {
    super(message, 'source_rejected');
  }
}

/** 422: an upload asked for as a report's logo is not a PNG or JPEG within the logo's limits. */
export class LogoRejected extends Unprocessable {
  constructor(message: string) {
    super(message, 'logo_rejected');
  }
}
