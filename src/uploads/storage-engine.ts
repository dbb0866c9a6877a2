import { PassThrough, finished } from 'node:stream';
import type { Request } from 'express';
import type { StorageEngine } from 'multer';
import type { Logger } from 'pino';
import type { FileCatalog, FileRecord } from '../catalog/files';
import { putHashed } from '../storage/put-hashed';
import type { Store } from '../storage/store';
import { newFileId, sanitizeFilename, storeKeyFor } from './names';

/** What the engine adds to each multer file: enough to mark the record ready or remove it. */
export interface StoredUpload {
  id: string;
  key: string;
  size: number;
  sha256: string;
  /** The record as created, still `pending`. */
  record: FileRecord;
}

export type UploadedFile = Express.Multer.File & StoredUpload;

class ClientDisconnected extends Error {
  constructor() {
    super('The client disconnected before the upload finished.');
    this.name = 'ClientDisconnected';
  }
}

/**
 * A multer StorageEngine that streams each file part straight into the store, hashing and
 * counting bytes on the way, with a `pending` record created first. On any failure the pending
 * record and the partial blob are removed here; files that completed before a later part failed
 * are removed by multer through `_removeFile`.
 */
export class StoreStorageEngine implements StorageEngine {
  /** Work per request that may outlive multer's callback (cleanup after a stream error). */
  private readonly inflight = new WeakMap<Request, Promise<unknown>[]>();

  constructor(
    private readonly deps: { store: Store; catalog: FileCatalog; log: Logger },
  ) {}

  _handleFile(req: Request, file: Express.Multer.File, callback: (error?: unknown, info?: Partial<UploadedFile>) => void): void {
    const work = this.store(req, file);
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

  private track(req: Request, work: Promise<unknown>): void {
    const list = this.inflight.get(req) ?? [];
    list.push(work);
    this.inflight.set(req, list);
  }

  _removeFile(req: Request, file: UploadedFile, callback: (error: Error | null) => void): void {
    const work = this.discard(file.id, file.key);
    this.track(req, work);
    work.then(
      () => callback(null),
      (err) => callback(err),
    );
  }

  private async store(req: Request, file: Express.Multer.File): Promise<StoredUpload> {
    const { store, catalog, log } = this.deps;
    const id = newFileId();
    const key = storeKeyFor(id);
    const record = await catalog.createPending({
      id,
      owner: req.owner,
      originalName: file.originalname,
      name: sanitizeFilename(file.originalname),
      contentType: file.mimetype || 'application/octet-stream',
      store: store.driver,
      key,
    });
    log.debug({ fileId: id, owner: req.owner }, 'upload started');

    // busboy ends a file that hits the size limit early; abort so the truncated part is dropped.
    const controller = new AbortController();
    const onLimit = () => controller.abort(new Error('File size limit reached'));
    const onClose = () => {
      if (!req.readableEnded) controller.abort(new ClientDisconnected());
    };
    file.stream.once('limit', onLimit);
    req.once('close', onClose);
    // The store reads a pipe, not the part itself: a store that gives up destroys what it reads,
    // and a destroyed part stream makes multer answer with its AbortError (500) instead of the
    // store's reason (507 full, 503 unavailable). The part's rest is drained instead.
    const part = new PassThrough();
    // An error or a premature close of the part (a broken form) fails the put.
    const stopWatching = finished(file.stream, (err) => err && part.destroy(err));
    file.stream.pipe(part);
    try {
      const { size, sha256 } = await putHashed(store, key, part, { signal: controller.signal, contentType: file.mimetype });
      return { id, key, size, sha256, record };
    } catch (err) {
      file.stream.unpipe(part);
      file.stream.resume();
      await catalog.discardPending(id);
      throw err;
    } finally {
      stopWatching();
      file.stream.off('limit', onLimit);
      req.off('close', onClose);
    }
  }

  private async discard(id: string, key: string): Promise<void> {
    await this.deps.catalog.discardPending(id);
    await this.deps.store.delete(key);
  }
}
