import { PassThrough, finished } from 'node:stream';
import type { Request } from 'express';
import type { StorageEngine } from 'multer';
import type { Logger } from 'pino';
import type { Files, StoredFile } from '../files/files';

/** What the engine adds to each multer file: its record (still `pending`), size and sha256. */
export type UploadedFile = Express.Multer.File & StoredFile;

class ClientDisconnected extends Error {
  constructor() {
    super('The client disconnected before the upload finished.');
    this.name = 'ClientDisconnected';
  }
}

/**
 * A multer StorageEngine that streams each file part into the store through `Files.store` (a
 * `pending` record first, the bytes hashed and counted on the way), which leaves nothing behind
 * on failure. Files that completed before a later part failed are discarded by multer through
 * `_removeFile`.
 */
export class StoreStorageEngine implements StorageEngine {
  /** Work per request that may outlive multer's callback (cleanup after a stream error). */
  private readonly inflight = new WeakMap<Request, Promise<unknown>[]>();
  /** Per request: the parts being stored, the parts stored (still pending), and why it was aborted. */
  private readonly storing = new WeakMap<Request, Set<AbortController>>();
  private readonly stored = new WeakMap<Request, StoredFile[]>();
  private readonly aborted = new WeakMap<Request, Error>();
  private readonly onFailure = new WeakMap<Request, (err: unknown) => void>();
  /** Requests whose first part reserved the request's length against the owner's quota. */
  private readonly reserved = new WeakSet<Request>();

  constructor(
    private readonly deps: {
      files: Files;
      log: Logger;
      /** The lifetime of the request's files, from what was read so far (it throws for an invalid one). */
      lifetimeOf?: (req: Request) => number | undefined;
    },
  ) {}

  _handleFile(req: Request, file: Express.Multer.File, callback: (error?: unknown, info?: Partial<UploadedFile>) => void): void {
    const reason = this.aborted.get(req);
    if (reason) {
      file.stream.resume();
      return callback(reason);
    }
    let lifetimeMs: number | undefined;
    try {
      lifetimeMs = this.deps.lifetimeOf?.(req);
    } catch (err) {
      // Refused before a byte of this file is stored; multer discards the ones before it.
      file.stream.resume();
      return callback(err);
    }
    const work = this.store(req, file, lifetimeMs);
    this.track(req, work);
    work.then(
      (info) => callback(null, info),
      (err) => callback(err),
    );
  }

  /**
   * Resolves once every file of the request has finished storing or cleaning up. Multer answers a
   * broken form as soon as the part stream errors, before our cleanup is done; waiting here means
   * that when a client sees the error, nothing of its upload is left.
   */
  async settled(req: Request): Promise<void> {
    let seen = 0;
    for (let work = this.inflight.get(req) ?? []; seen < work.length; work = this.inflight.get(req) ?? []) {
      seen = work.length;
      await Promise.allSettled(work);
    }
  }

  /**
   * Ends a request's upload for good, whatever multer is waiting for (a body that stopped arriving
   * never ends): parts being stored stop, parts already stored are discarded, and later parts are
   * refused, all with `reason`. `settled` resolves once that cleanup is done.
   */
  abort(req: Request, reason: Error): void {
    if (this.aborted.has(req)) return;
    this.aborted.set(req, reason);
    for (const controller of this.storing.get(req) ?? []) controller.abort(reason);
    for (const file of this.stored.get(req)?.splice(0) ?? []) this.discard(req, file);
  }

  /**
   * `listener` hears of the first part that fails on the server's side (the store or the catalog),
   * once, with its error. Multer would only answer once the whole body has arrived, which may be
   * minutes of a large file sent for nothing; the caller can answer at once instead. The upload is
   * already aborted by then (`settled` says when its cleanup is done).
   */
  whenServerFails(req: Request, listener: (err: unknown) => void): void {
    this.onFailure.set(req, listener);
  }

  private discard(req: Request, file: StoredFile): void {
    this.track(
      req,
      this.deps.files.discard(file.record).catch((err: unknown) => this.deps.log.error({ err, fileId: file.record.id }, 'discarding an aborted upload failed')),
    );
  }

  private track(req: Request, work: Promise<unknown>): void {
    const list = this.inflight.get(req) ?? [];
    list.push(work);
    this.inflight.set(req, list);
  }

  _removeFile(req: Request, file: UploadedFile, callback: (error: Error | null) => void): void {
    const work = this.deps.files.discard(file.record);
    this.track(req, work);
    work.then(
      () => callback(null),
      (err) => callback(err),
    );
  }

  /**
   * What a part reserves against the owner's quota: the first, the whole request's length (no
   * part can be larger, and the request is refused before its bytes are read when that doesn't
   * fit); the later ones nothing more. Without a Content-Length (a chunked body), undefined: each
   * part is measured as it streams (see `Files.store`).
   */
  private reservation(req: Request): number | undefined {
    const length = req.headers['content-length'];
    if (req.headers['transfer-encoding'] !== undefined || length === undefined || !/^\d+$/.test(length)) return undefined;
    if (this.reserved.has(req)) return 0;
    this.reserved.add(req);
    return Number(length);
  }

  private async store(req: Request, file: Express.Multer.File, lifetimeMs: number | undefined): Promise<StoredFile> {
    // busboy ends a file that hits the size limit early; abort so the truncated part is dropped.
    const controller = new AbortController();
    const onLimit = () => controller.abort(new Error('File size limit reached'));
    let storing = this.storing.get(req);
    if (!storing) {
      const parts = (storing = new Set<AbortController>());
      this.storing.set(req, parts);
      // One listener per request, not one per part: a part is still storing while the next streams
      // in, and a form of many small files piled up listeners (Node's leak warning from the 11th).
      req.once('close', () => {
        if (req.readableEnded) return;
        for (const part of parts) part.abort(this.aborted.get(req) ?? new ClientDisconnected());
      });
    }
    storing.add(controller);
    file.stream.once('limit', onLimit);
    // The store reads a pipe, not the part itself: a store that gives up destroys what it reads,
    // and a destroyed part stream makes multer answer with its AbortError (500) instead of the
    // store's reason (507 full, 503 unavailable). The part's rest is drained instead.
    const part = new PassThrough();
    // The put reports a broken part; until it starts reading (after the record is created) nothing
    // else listens, and an unheard 'error' would crash the process.
    part.on('error', () => undefined);
    // An error or a premature close of the part (a broken form) fails the put.
    let partFailed = false;
    const stopWatching = finished(file.stream, (err) => {
      if (!err) return;
      partFailed = true;
      part.destroy(err);
    });
    file.stream.pipe(part);
    try {
      const stored = await this.deps.files.store(
        { owner: req.owner, originalName: file.originalname, contentType: file.mimetype || 'application/octet-stream', lifetimeMs },
        part,
        {
          signal: controller.signal,
          onPending: async (record) => this.deps.log.debug({ fileId: record.id, owner: req.owner }, 'upload started'),
          reserve: this.reservation(req),
        },
      );
      const reason = this.aborted.get(req);
      if (reason) {
        // Aborted as the last byte went in: this part goes with the rest.
        this.discard(req, stored);
        throw reason;
      }
      this.stored.set(req, [...(this.stored.get(req) ?? []), stored]);
      return stored;
    } catch (err) {
      file.stream.unpipe(part);
      file.stream.resume();
      // Neither the client (a broken form, a disconnect, a limit) nor an abort: the server failed.
      if (!controller.signal.aborted && !partFailed && !this.aborted.has(req)) {
        this.abort(req, err instanceof Error ? err : new Error(String(err)));
        this.onFailure.get(req)?.(err);
      }
      throw err;
    } finally {
      storing.delete(controller);
      stopWatching();
      file.stream.off('limit', onLimit);
    }
  }
}
