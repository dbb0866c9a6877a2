import type { Readable } from 'node:stream';

/** Inclusive byte range, as in HTTP `Range: bytes=start-end`. */
export interface ByteRange {
  start: number;
  end: number;
}

export interface BlobInfo {
  key: string;
  size: number;
  modifiedAt: Date;
}

export interface PutOptions {
  /** Aborting discards everything written so far; the put rejects with the signal's reason. */
  signal?: AbortSignal;
  contentType?: string;
}

export interface ListOptions {
  prefix?: string;
  /** Opaque cursor from a previous page. */
  cursor?: string;
  limit?: number;
}

export interface ListPage {
  items: BlobInfo[];
  /** Present when there may be more items. */
  cursor?: string;
}

/**
 * A multipart upload begun in an object store and neither completed nor aborted. Its parts stay
 * stored (and billed) until it is aborted: a put whose abort failed (the store was down) or a
 * process killed mid-put leaves one behind.
 */
export interface IncompleteUpload {
  key: string;
  uploadId: string;
  startedAt: Date;
  /** Bytes its parts hold so far. */
  bytes: number;
  /** Left by a failed put of this store object whose abort failed too: nothing will complete it. */
  abandoned: boolean;
}

export interface IncompleteUploadPage {
  items: IncompleteUpload[];
  /** Present when there may be more items. */
  cursor?: string;
}

/** A part of a multipart upload, as the store lists it. */
export interface UploadedPart {
  partNumber: number;
  etag: string;
  size: number;
}

/** A part list the store refused to assemble (an ETag or part that doesn't match what was uploaded). */
export class PartsRejected extends Error {}

/**
 * One contract for every storage driver (memory, tmp, volume, and object storage).
 *
 * - `put` streams the body in and is atomic: the key either holds the complete new bytes or is
 *   untouched; a failed or aborted put leaves nothing behind.
 * - `get` and `head` throw or return undefined for a missing key; `get` rejects with BlobNotFound
 *   before any byte is streamed, so callers can still answer 404.
 * - `delete` is idempotent.
 * - `list` pages through keys in lexicographic order, skipping the store's own internal keys.
 * - Keys are relative paths made of `[A-Za-z0-9._-]` segments joined by `/`; stores reject others.
 */
export interface Store {
  /** Driver name recorded with each file (`memory`, `tmp`, `volume`, `s3`). */
  readonly driver: string;
  /** Human description for logs and errors, e.g. the directory or bucket. */
  readonly location: string;
  put(key: string, body: Readable, options?: PutOptions): Promise<{ size: number }>;
  get(key: string, range?: ByteRange): Promise<Readable>;
  /**
   * Stores on local disk or in memory: `length` bytes from `start` in one buffer, for a small
   * download that is cheaper without a stream. Rejects with BlobNotFound for a missing key, and
   * with an error when the blob ends before `start + length`, never with fewer bytes.
   */
  read?(key: string, start: number, length: number): Promise<Buffer>;
  head(key: string): Promise<BlobInfo | undefined>;
  delete(key: string): Promise<void>;
  list(options?: ListOptions): Promise<ListPage>;
  /**
   * Directory stores only: moves `file`, complete and on the store's filesystem, into place under
   * `key` (flushed, then renamed, as a put publishes); the file is gone from where it was.
   */
  adopt?(key: string, file: string): Promise<{ size: number }>;
  /**
   * Object stores only: copies the object under `source` to `key` inside the store, done by the
   * store itself (its bytes never pass through stowage), as atomic as a put. `source` is a store
   * key or one under the store's own dot directories (a resumable upload's `.tus/...`); it stays
   * where it is; the copy gets `contentType`, as a put would. Resolves with the size the store
   * reports for the copy; a missing source rejects with BlobNotFound.
   */
  copy?(source: string, key: string, options?: { contentType?: string }): Promise<{ size: number }>;
  /** Makes the store ready to use, once at start-up (creates a directory store's directories). */
  prepare?(): Promise<void>;
  /** Writes, reads back and deletes a probe object; throws StoreUnavailable when it can't. */
  probe(): Promise<void>;
  /**
   * The recurring readiness check, after start-up proved the store with `probe`: cheap, and
   * free of per-request fees where they apply (a bucket is asked, not written to; a directory
   * on local disk is probed again). Throws StoreUnavailable when the store can't be used.
   */
  check(): Promise<void>;
  /**
   * Object stores only: the incomplete multipart uploads under the store's keys that began before
   * `startedBefore`, or that this store object abandoned whatever their age, a page at a time.
   */
  listIncompleteUploads?(options: { startedBefore: Date; cursor?: string; limit?: number }): Promise<IncompleteUploadPage>;
  /** Aborts an incomplete upload, discarding its parts; one already gone is not an error. */
  abortIncompleteUpload?(upload: Pick<IncompleteUpload, 'key' | 'uploadId'>): Promise<void>;
  close(): Promise<void>;
}

const SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/** A key `copy` may read from: a store key, or one under a dot directory of the store's own (`.tus/...`). */
export function assertValidSourceKey(key: string): void {
  assertValidKey(key.startsWith('.') ? key.slice(1) : key);
}

/** Store keys are generated by stowage, never taken from a client; this guards the invariant. */
export function assertValidKey(key: string): void {
  const segments = key.split('/');
  if (key.length > 512 || !segments.every((s) => SEGMENT.test(s) && s !== '..')) {
    throw new Error(`Invalid store key: ${JSON.stringify(key)}`);
  }
}
