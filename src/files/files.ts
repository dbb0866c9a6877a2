import { type Readable, pipeline } from 'node:stream';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { CatalogDb } from '../catalog/database';
import { deleteFileRecord, type FileCatalog, type FileChanges, type FilePage, type FileRecord, markFileMissing, markFilesReady, NotPending, type PendingUpload, type ReadyHook, type StoredBlob, type StoreTotals } from '../catalog/files';
import type { Placement } from '../catalog/placement';
import type { Database, FileStatus } from '../catalog/schema';
import { isDatabaseUnavailable } from '../catalog/unavailable';
import { BlobNotFound, Conflict, FILE_MISSING_MESSAGE, FileElsewhere, FileExpired, FileMissing, NotFound } from '../errors';
import { deleteMirrorCopy } from '../mirror/delete';
import { MirrorFallback } from '../mirror/fallback';
import { type Quotas, quotaMeter, type Room } from '../quotas/quotas';
import { canPresign } from '../storage/presign';
import { putHashed } from '../storage/put-hashed';
import type { ByteRange, Store } from '../storage/store';
import type { StoreSet } from '../storage/store-set';
import { cleanOriginalName, contentDisposition, newFileId, sanitizeFilename, storeKeyFor } from './names';

export interface NewUpload {
  owner: string;
  /** As the client named it; stored without control and bidi characters, and the display name is a sanitised copy. */
  originalName: string;
  contentType: string;
  /** How long the file is kept once ready (ms; it then expires); unset: until deleted. */
  lifetimeMs?: number | null;
}

/** What `PATCH /v1/files/:id` changes: a new name, metadata (null removes it), when it expires (null: never). */
export interface FileUpdate {
  name?: string;
  metadata?: Record<string, string> | null;
  expiresAt?: Date | null;
}

/** Records made `expired` in the sweep's transaction, for work that must go with them (a `file.expired` event). */
export type ExpiredHook = (records: FileRecord[], trx: Kysely<Database>) => Promise<void>;

/** Whether a file is expired: marked so by the sweep, or ready past its `delete_at` (the sweep has yet to come). */
export function isExpired(record: Pick<FileRecord, 'status' | 'delete_at'>, now = new Date()): boolean {
  return record.status === 'expired' || (record.status === 'ready' && record.delete_at !== null && record.delete_at <= now.toISOString());
}

/** A file whose bytes are stored and measured, its record still `pending` until published. */
export interface StoredFile {
  record: FileRecord;
  size: number;
  sha256: string;
}

export interface FilesDeps {
  db: CatalogDb;
  catalog: FileCatalog;
  /** New files go to the primary; a record's blob is read and deleted through the store it names. */
  stores: StoreSet;
  onReady?: ReadyHook;
  /** This process's Fly Machine: files on another Machine's volume are never judged missing here. */
  placement?: Placement;
  /** This process's instance id, recorded on the uploads it writes (see src/instance.ts). */
  instance?: string;
  /** Owners' quotas: new records reserve room, publishing settles it. None: no limits. */
  quotas?: Quotas;
  events?: FileEvents;
}

/**
 * Told of files deleted or found missing, on the executor of the transaction that changes the
 * record (webhook events), so the news commits or rolls back with the change.
 */
export interface FileEvents {
  fileEvent(db: Kysely<Database>, type: 'file.deleted' | 'file.missing', records: FileRecord[]): Promise<void>;
}

/** Where a file shown to one owner lives: enough to remove its blob. */
export type BlobRef = Pick<FileRecord, 'id' | 'store' | 'key'>;

/**
 * The lifecycle of a file, in one place: a file is a catalog record plus a blob, and a `ready`
 * record always has its blob.
 *
 * - `store` creates a `pending` record, then streams the bytes into the primary store (atomic,
 *   hashed on the way); `expect` creates the record for bytes that arrive another way.
 * - `publish` turns pending records ready, with the ready hooks (the mirror copy), in one
 *   transaction: the caller's when it has one (a task's completion).
 * - `discard` removes a file that never became ready; `delete` removes a file for good.
 * - `open` reads a ready file from its store, else from the mirror (restoring it), and marks the
 *   record `missing` only when no copy exists anywhere.
 */
export class Files {
  private readonly fallback: MirrorFallback;
  /**
   * Pending files this process gave up on whose records it could not remove (the catalog was
   * unreachable), or could not tell whether a publish went through: `retryDiscards` settles them.
   */
  private readonly undiscarded = new Map<string, BlobRef>();

  constructor(private readonly deps: FilesDeps) {
    this.fallback = new MirrorFallback({ stores: deps.stores, catalog: deps.catalog });
  }

  get(owner: string, id: string): Promise<FileRecord | undefined> {
    return this.deps.catalog.get(owner, id);
  }

  getMany(owner: string, ids: string[]): Promise<FileRecord[]> {
    return this.deps.catalog.getMany(owner, ids);
  }

  list(owner: string, page: { limit: number; cursor?: string }): Promise<FilePage> {
    return this.deps.catalog.list(owner, page);
  }

  listReportSources(owner: string, limit: number): Promise<FileRecord[]> {
    return this.deps.catalog.listReportSources(owner, limit);
  }

  /** Direct uploads still pending after their expiry, oldest first, for the sweeper to discard. */
  expiredUploads(now: Date, limit: number): Promise<FileRecord[]> {
    return this.deps.catalog.expiredPending(now, limit);
  }

  /** Pending uploads whose writing process may be dead, for the sweep and the doctor to judge (see `pendingUploadsToJudge`). */
  pendingUploadsToJudge(...args: Parameters<FileCatalog['pendingUploadsToJudge']>): Promise<PendingUpload[]> {
    return this.deps.catalog.pendingUploadsToJudge(...args);
  }

  /** Which of `keys` in `store` belong to uploads not yet ready (see `FileCatalog.pendingKeys`). */
  pendingKeys(store: string, keys: string[]): Promise<Set<string>> {
    return this.deps.catalog.pendingKeys(store, keys);
  }

  /**
   * Streams `body` into the primary store as a new pending file of `upload.owner`. `onPending`
   * runs once the record exists, before any byte is stored (a task notes its outputs there). On
   * any failure nothing is left: no blob, no record.
   *
   * `reserve`: bytes the record reserves against the owner's quota, when the caller knows the
   * body can't be larger than that plus what it reserved already (a request's Content-Length);
   * past the quota it is refused (QuotaExceeded) before a byte is read. Left out, the size is
   * unknown: the body is cut off, and nothing kept, once it outgrows what the quota leaves.
   */
  async store(
    upload: NewUpload,
    body: Readable,
    options: { signal?: AbortSignal; onPending?: (record: FileRecord) => Promise<void>; reserve?: number } = {},
  ): Promise<StoredFile> {
    const store = this.deps.stores.primary;
    // The record names this process: if it dies mid-upload, the sweep knows the upload stopped.
    const { record, room } = await this.createPending(upload, { upload_instance: this.deps.instance ?? null, size: options.reserve ?? 0 });
    try {
      await options.onPending?.(record);
      const bytes = room && options.reserve === undefined ? pipeline(body, quotaMeter(room), () => undefined) : body;
      const { size, sha256 } = await putHashed(store, record.key, bytes, { signal: options.signal, contentType: upload.contentType });
      return { record, size, sha256 };
    } catch (err) {
      // A failed put leaves nothing in the store (puts are atomic): only the record goes.
      await this.deps.catalog.discardPending(record.id).catch(() => this.undiscarded.set(record.id, record));
      throw err;
    }
  }

  /**
   * A pending record in the primary store for bytes that arrive some other way (a direct upload's
   * presigned PUT), with what the client announced and when it expires.
   */
  async expect(upload: NewUpload, announced: { size?: number; sha256?: string; expiresAt?: Date; partSize?: number } = {}): Promise<FileRecord> {
    // The announced size is reserved against the owner's quota (refused past it).
    const { record } = await this.createPending(upload, {
      size: announced.size ?? 0,
      sha256: announced.sha256 ?? null,
      expires_at: announced.expiresAt?.toISOString() ?? null,
      part_size: announced.partSize ?? null,
    });
    return record;
  }

  /** Keeps an expected file's upload from being swept before `expiresAt` (a client still at work). */
  extendExpiry(record: FileRecord, expiresAt: Date): Promise<void> {
    return this.deps.catalog.extendExpiry(record.id, expiresAt);
  }

  /** Notes the multipart upload whose parts an expected file's client PUTs, so `discard` aborts it. */
  async noteMultipartUpload(record: FileRecord, uploadId: string): Promise<FileRecord> {
    if (!(await this.deps.catalog.setMultipartUpload(record.id, uploadId))) {
      throw new Conflict('The upload was removed while it was being created. Start a new one.', 'upload_cancelled');
    }
    return { ...record, multipart_upload_id: uploadId };
  }

  /**
   * Streams the bytes of an `expect`ed file into its store, hashed on the way (a finished
   * resumable upload); `publish` then makes it ready. A failed put leaves no blob; the record
   * stays pending for its caller to retry or for the sweeper once it expires.
   */
  async fill(record: FileRecord, body: Readable): Promise<StoredFile> {
    const { size, sha256 } = await putHashed(this.deps.stores.get(record.store), record.key, body, { contentType: record.content_type });
    return { record, size, sha256 };
  }

  /**
   * Like `fill` for bytes already complete in a file on the store's own filesystem, whose sha256
   * is known: moved into place without being read. Undefined when the record's store can't
   * adopt a file (an object store): the caller `fill`s instead.
   */
  async adopt(record: FileRecord, file: string, sha256: string): Promise<StoredFile | undefined> {
    const store = this.deps.stores.get(record.store);
    if (!store.adopt) return undefined;
    const { size } = await store.adopt(record.key, file);
    return { record, size, sha256 };
  }

  /**
   * Like `adopt` for bytes complete in another object of the record's store (a finished resumable
   * upload's, under `.tus/`) whose size and sha256 are known: copied to the record's key by the
   * store itself, never read. The copy's size, as the store reports it, must be `known.size`: a
   * copy that differs is removed, and this throws. Undefined when the store can't copy: the
   * caller `fill`s instead.
   */
  async adoptObject(record: FileRecord, source: string, known: { size: number; sha256: string }): Promise<StoredFile | undefined> {
    const store = this.deps.stores.get(record.store);
    if (!store.copy) return undefined;
    const { size } = await store.copy(source, record.key, { contentType: record.content_type });
    if (size === known.size) return { record, size, sha256: known.sha256 };
    await store.delete(record.key);
    throw new Error(`The copy of ${source} holds ${size} bytes, not the ${known.size} received.`);
  }

  /** Gives pending files the lifetime they get once published (an upload form's `expiresIn` that came after its files). */
  setLifetime(ids: string[], lifetimeMs: number): Promise<void> {
    return this.deps.catalog.setLifetime(ids, lifetimeMs);
  }

  /** A pending record reserving `extra.size` bytes and one file of the owner's quota (when it has one). */
  private async createPending(upload: NewUpload, extra: Parameters<FileCatalog['createPending']>[1] = {}): Promise<{ record: FileRecord; room?: Room }> {
    const id = newFileId();
    if (upload.lifetimeMs) extra = { ...extra, lifetime_ms: upload.lifetimeMs };
    const file = {
      id,
      owner: upload.owner,
      originalName: cleanOriginalName(upload.originalName),
      name: sanitizeFilename(upload.originalName),
      contentType: upload.contentType,
      store: this.deps.stores.primary.driver,
      key: storeKeyFor(id),
    };
    const { quotas, catalog } = this.deps;
    if (!quotas) return { record: await catalog.createPending(file, extra) };
    const { result, room } = await quotas.reserve(upload.owner, extra.size ?? 0, (db) => catalog.createPending(file, extra, db));
    return { record: result, room };
  }

  /**
   * Pending to ready, all or none, with the ready hooks, on `db` when the caller runs a
   * transaction of its own. Resolves with the records' new `updated_at`. One file whose lifetime
   * the caller knows, and no work for the hooks, is a single statement, atomic without a
   * transaction (the common upload, kept cheap). A record
   * that is no longer pending (removed meanwhile by the doctor or an operator) fails it with 409
   * `upload_cancelled`; the caller discards what it stored.
   */
  async publish(owner: string, items: StoredBlob[], db?: Kysely<Database>): Promise<string> {
    try {
      return await this.markReady(owner, items, db);
    } catch (err) {
      if (err instanceof NotPending) {
        throw new Conflict('The file was removed while it was being uploaded, so it was not kept. Upload it again.', 'upload_cancelled');
      }
      throw err;
    }
  }

  private async markReady(owner: string, items: StoredBlob[], db?: Kysely<Database>): Promise<string> {
    const { onReady, quotas } = this.deps;
    const work = items.length > 0 ? await onReady?.(db ?? this.deps.db, owner) : undefined;
    const mark = async (on: Kysely<Database>) => {
      // Files larger than they reserved are checked against the owner's quota (refused past it).
      const at = quotas ? await quotas.settle(on, owner, items, (trx) => markFilesReady(trx, owner, items)) : await markFilesReady(on, owner, items);
      await work?.(on, items.map((i) => i.id));
      return at;
    };
    // One statement (a lone file, nothing to record with it, its lifetime known) is atomic alone.
    if (db || (items.length === 1 && !work && items[0].lifetimeMs !== undefined)) return mark(db ?? this.deps.db);
    return this.deps.db.transaction().execute(mark);
  }

  /** Pending to failed with a reason the client reads (a direct upload that didn't verify), and its blob removed. */
  async fail(file: BlobRef, reason: string): Promise<void> {
    await this.deps.stores.get(file.store).delete(file.key);
    await this.deps.catalog.markFailed(file.id, reason);
  }

  /**
   * Removes a file that never became ready. Only its creator can publish a pending file, so the
   * blob goes first: a crash in between leaves a pending record for the sweeper, never a blob
   * nobody can find, and a catalog outage can't keep the bytes. A record that can't be removed
   * (the catalog unreachable) is removed by a later `retryDiscards`. A store that can't delete
   * still loses the record (nobody is told of a file that isn't coming); the blob, if any, is
   * then an orphan the doctor reports.
   */
  async discard(file: BlobRef & { multipart_upload_id?: string | null }): Promise<void> {
    const store = this.deps.stores.get(file.store);
    const uploadId = file.multipart_upload_id;
    // A direct upload in parts: its parts go too (the object, if it was assembled, just below).
    const parts = uploadId && store.abortIncompleteUpload ? store.abortIncompleteUpload({ key: file.key, uploadId }) : Promise.resolve();
    const blob = await parts
      .then(() => store.delete(file.key))
      .then(
        () => undefined,
        (err: unknown) => ({ err }),
      );
    try {
      await this.deps.catalog.discardPending(file.id);
    } catch (err) {
      this.undiscarded.set(file.id, file);
      throw err;
    }
    this.undiscarded.delete(file.id);
    if (blob) throw blob.err;
  }

  /**
   * Cleans up after `publish` failed with `err`: the files are discarded, unless the catalog went
   * away mid-publish. Then the records may have turned ready all the same (the commit made, its
   * answer lost), so their blobs stay until `retryDiscards` finds out, once the catalog is back.
   */
  async discardUnpublished(files: BlobRef[], err: unknown): Promise<void> {
    if (isDatabaseUnavailable(err)) {
      for (const file of files) this.undiscarded.set(file.id, file);
      return;
    }
    await Promise.allSettled(files.map((file) => this.discard(file)));
  }

  /**
   * Discards the files this process gave up on while the catalog was unreachable, now that it
   * may be back (the leftover sweep calls it): each one still pending (blob, then record); one
   * that turned ready keeps its blob; one whose record is gone loses its blob, if any is left.
   * Returns how many were settled; the rest wait for the next call.
   */
  async retryDiscards(): Promise<number> {
    let settled = 0;
    for (const [id, file] of this.undiscarded) {
      const status = await this.deps.catalog.statusOf(id);
      if (status === 'pending') await this.discard(file);
      else if (status === undefined) await this.deps.stores.get(file.store).delete(file.key);
      this.undiscarded.delete(id);
      settled++;
    }
    return settled;
  }

  /**
   * Removes a pending upload of another process that may still be alive (silent, not known dead):
   * the record goes first, only if it is still pending, so that process can no longer publish it;
   * then the blob, if it wrote one. False when the record was no longer pending.
   */
  async discardAbandoned(file: BlobRef): Promise<boolean> {
    const store = this.deps.stores.get(file.store);
    if (!(await this.deps.catalog.delete({ id: file.id, status: 'pending' }))) return false;
    await store.delete(file.key);
    return true;
  }

  /**
   * Deletes a file for good; `ifStatus` only if it still has the status the caller saw. The record
   * goes first: once it is gone nobody can be handed the blob, so a crash in between leaves an
   * orphan blob (which the doctor finds), never a record without its file. A blob or mirror copy
   * that can't be removed is logged and left as an orphan. False when there was no such record.
   */
  async delete(file: BlobRef & { owner?: string }, log: Logger, ifStatus?: FileStatus): Promise<boolean> {
    // Resolved first: a record whose store is unreachable is kept rather than orphan its blob.
    const store = this.deps.stores.get(file.store);
    if (!(await this.deleteRecord({ id: file.id, owner: file.owner, status: ifStatus }))) return false;
    await store.delete(file.key).catch((err: unknown) => {
      log.error({ err, fileId: file.id, key: file.key }, 'record deleted but blob removal failed');
    });
    await deleteMirrorCopy(this.deps.stores, file, log);
    return true;
  }

  /**
   * The record goes with its `file.deleted` event, for a file its owner could read (ready or
   * missing): not an upload that never finished, nor a file that expired (it had `file.expired`).
   */
  private async deleteRecord(match: { id: string; owner?: string; status?: FileStatus }): Promise<boolean> {
    const { events } = this.deps;
    if (!events) return this.deps.catalog.delete(match);
    return this.deps.db.transaction().execute(async (trx) => {
      const deleted = await deleteFileRecord(trx, match);
      if (deleted && (deleted.status === 'ready' || deleted.status === 'missing')) await events.fileEvent(trx, 'file.deleted', [deleted]);
      return deleted !== undefined;
    });
  }

  /**
   * Marks a record `missing` (its bytes are gone from every store), only if it still has
   * `ifStatus`, with its `file.missing` event: the one place downloads, tasks and the doctor
   * mark files missing. False when the record had changed.
   */
  async markMissing(id: string, ifStatus: FileStatus = 'ready'): Promise<boolean> {
    const { events } = this.deps;
    return this.deps.db.transaction().execute(async (trx) => {
      const marked = await markFileMissing(trx, id, ifStatus, FILE_MISSING_MESSAGE);
      if (marked && events) await events.fileEvent(trx, 'file.missing', [marked]);
      return marked !== undefined;
    });
  }

  /**
   * Renames a ready file, sets its metadata or when it expires. NotFound when the owner has no
   * such file; 409 when it is not ready (`file_pending`, `file_expired`, `file_not_ready`).
   */
  async update(owner: string, id: string, update: FileUpdate): Promise<FileRecord> {
    const changes: FileChanges = {};
    if (update.name !== undefined) Object.assign(changes, { name: sanitizeFilename(update.name), original_name: cleanOriginalName(update.name) });
    if (update.metadata !== undefined) changes.metadata = update.metadata === null ? null : JSON.stringify(update.metadata);
    if (update.expiresAt !== undefined) changes.delete_at = update.expiresAt?.toISOString() ?? null;
    const changed = await this.deps.catalog.change(owner, id, changes);
    if (changed) return changed;
    const record = await this.get(owner, id);
    if (!record) throw new NotFound('No file with that id.');
    if (record.status === 'pending') throw new Conflict('The file is still being uploaded: change it once it is ready.', 'file_pending');
    if (isExpired(record)) throw new Conflict(`The file expired${record.delete_at ? ` at ${record.delete_at}` : ''} and is being deleted: it can no longer be changed.`, 'file_expired');
    throw new Conflict(`The file is ${record.status}: only a ready file can be changed.`, 'file_not_ready');
  }

  /**
   * Turns ready files past their `expiresAt` into `expired` records (no longer listed or
   * downloadable), at most `limit`, in one transaction with `onExpired`. Resolves with them.
   */
  expireDue(now: Date, limit: number, onExpired?: ExpiredHook): Promise<FileRecord[]> {
    return this.deps.db.transaction().execute(async (trx) => {
      const records = await this.deps.catalog.expireDue(trx, now, limit);
      if (records.length > 0 && onExpired) await onExpired(records, trx);
      return records;
    });
  }

  /** Expired records whose bytes (then records) are still to be removed, for the expiry sweep. */
  expiredRecords(limit: number): Promise<FileRecord[]> {
    return this.deps.catalog.expired(limit);
  }

  /**
   * Removes an expired file: its blob, then its mirror copy, then its record (only while still
   * `expired`). The record goes last, as the note of what is left to do: a crash or a failure at
   * any step leaves it for the next sweep, which repeats what was done already harmlessly.
   */
  async removeExpired(record: FileRecord, log: Logger): Promise<void> {
    await this.deps.stores.get(record.store).delete(record.key);
    const { mirror } = this.deps.stores;
    if (mirror && record.store !== mirror.driver) await mirror.delete(record.key);
    await this.deps.catalog.delete({ id: record.id, status: 'expired' });
    log.info({ event: 'file.expired', fileId: record.id, owner: record.owner, store: record.store, size: Number(record.size) }, 'expired file deleted');
  }

  /** Ready files and their bytes per store, from one aggregate query (the storage gauges). */
  storeTotals(): Promise<StoreTotals> {
    return this.deps.catalog.storeTotals();
  }

  /** The owner's file if it can be read: NotFound, 409 `file_pending`, 410 `file_expired` or FileMissing otherwise. */
  async readable(owner: string, id: string): Promise<FileRecord> {
    const record = await this.get(owner, id);
    if (!record) throw new NotFound('No file with that id.');
    switch (record.status) {
      case 'ready':
        // Past its time, it is expired even before the sweep says so.
        if (isExpired(record)) throw new FileExpired(record.delete_at);
        return record;
      case 'pending':
        throw new Conflict('The file is still being uploaded.', 'file_pending');
      case 'expired':
        throw new FileExpired(record.delete_at);
      case 'missing':
      case 'failed':
        throw new FileMissing(record.status_message ?? FILE_MISSING_MESSAGE);
    }
  }

  /**
   * A ready file's bytes (or `range` of them) from its store, else from the mirror (restored to
   * its store in the background). When neither has them the record is marked `missing` and this
   * throws FileMissing; a file on another Machine's volume throws 409 `file_elsewhere` instead.
   */
  async open(record: FileRecord, range: ByteRange | undefined, log: Logger): Promise<Readable> {
    const store = this.reachableStore(record);
    try {
      return await store.get(record.key, range);
    } catch (err) {
      if (!(err instanceof BlobNotFound)) throw err;
      const body = await this.fallback.open(record, range, log);
      if (!body) throw await this.missing(record, log, err);
      return body;
    }
  }

  /**
   * A ready file's bytes (or `length` of them from `start`) in one buffer, from a store that can
   * read so (`Store.read`). Undefined from other stores, and when the blob isn't in its store:
   * `open` then reads the mirror's copy or says file_missing.
   */
  async read(record: FileRecord, start: number, length: number): Promise<Buffer | undefined> {
    const store = this.reachableStore(record);
    if (!store.read) return undefined;
    try {
      return await store.read(record.key, start, length);
    } catch (err) {
      if (!(err instanceof BlobNotFound)) throw err;
      return undefined;
    }
  }

  /** For HEAD: resolves when the bytes can be read (from the store or the mirror), as `open` judges. */
  async ensureReadable(record: FileRecord, log: Logger): Promise<void> {
    const store = this.reachableStore(record);
    if (!(await store.head(record.key)) && !(await this.fallback.exists(record, log))) throw await this.missing(record, log);
  }

  /**
   * The store key of a ready file's blob on the volume, once seen there, for a proxy in front to
   * send (DOWNLOAD_OFFLOAD). Undefined for a file in any other store (the proxy can't read it),
   * and for a blob gone from the volume: `open` then serves the mirror's copy or says file_missing.
   */
  async volumeKey(record: FileRecord): Promise<string | undefined> {
    if (record.store !== 'volume') return undefined;
    return (await this.reachableStore(record).head(record.key)) ? record.key : undefined;
  }

  /**
   * A presigned GET of the blob, when its store can make one and holds the blob (a vanished blob
   * is left to `open`, for the mirror or a clear file_missing). The bucket then sends the same
   * Content-Disposition (attachment unless the caller says inline) and Content-Type a proxied
   * download would.
   */
  async presignedUrl(record: FileRecord, options: { expiresIn: number; disposition?: 'attachment' | 'inline' }): Promise<string | undefined> {
    const store = this.reachableStore(record);
    if (!canPresign(store) || !(await store.head(record.key))) return undefined;
    return store.presignGet(record.key, {
      expiresIn: options.expiresIn,
      responseContentDisposition: contentDisposition(record.name, options.disposition ?? 'attachment'),
      responseContentType: record.content_type,
    });
  }

  /** Resolves once mirror restores started by reads have finished (shutdown, tests). */
  settled(): Promise<void> {
    return this.fallback.settled();
  }

  private reachableStore(record: FileRecord): Store {
    const here = this.deps.placement?.machineId;
    if (here && record.machine_id && record.machine_id !== here) {
      throw new FileElsewhere(record.machine_id, record.region);
    }
    return this.deps.stores.get(record.store);
  }

  private async missing(record: FileRecord, log: Logger, cause?: unknown): Promise<FileMissing> {
    log.error({ fileId: record.id, key: record.key, store: record.store, err: cause }, 'file missing from storage');
    // Only from ready: a file that expired meanwhile (its blob removed by the sweep) stays expired.
    await this.markMissing(record.id, 'ready');
    return new FileMissing(FILE_MISSING_MESSAGE);
  }
}
