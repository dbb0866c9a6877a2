import { AsyncLocalStorage } from 'node:async_hooks';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { Server } from '@tus/server';
import type { DataStore, Upload } from '@tus/utils';
import type { Logger } from 'pino';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import type { FileRecord } from '../../catalog/files';
import type { Instances } from '../../catalog/instances';
import { MACHINE_HEADER } from '../../catalog/placement';
import type { TusHashes } from '../../catalog/tus-hashes';
import type { TusLocks } from '../../catalog/tus-locks';
import type { Config } from '../../config';
import type { Files, StoredFile } from '../../files/files';
import { addChecksums } from './checksums';
import { addHashing, finishedSha256 } from './hashing';
import { sharedLocker } from './shared-locker';
import { parseUploadMetadata } from './metadata';
import { type FinishedRemover, s3DataStore } from './s3-data-store';

/** Where the tus server answers; upload URLs are `/v1/tus/<file id>`. */
export const TUS_PATH = '/v1/tus';

/** The bucket's directory of uploads in progress, under S3_PREFIX. */
const TUS_DIR = '.tus/';

/** The request the tus server is handling, as the route authenticated it. */
export interface TusCaller {
  owner: string;
  /** The request's `Upload-Checksum`, checked before a chunk reaches the store. */
  checksum?: string;
  log: Logger;
  /** For a creation: the pending record made for it (see `expect`), whose id the upload takes. */
  created?: FileRecord;
}

export interface TusDeps {
  storage: Config['storage'];
  expiryMs: number;
  /** This process's work directory: chunks with a checksum wait there, and a memory store's uploads live there. */
  workDir: string;
  files: Files;
  /** Each upload's running sha256, saved with its offset. */
  hashes: TusHashes;
  /** Leases of the uploads being written, shared by every instance; this process's id and the verdict on others. */
  locks: TusLocks;
  instances: Instances;
  instance: string;
  log: Logger;
}

type ReadableStore = DataStore & FinishedRemover & { read(id: string): Readable | Promise<Readable> };

const caller = new AsyncLocalStorage<TusCaller>();

/**
 * Resumable uploads through `@tus/server`, one per file: the upload id is the id of a `pending`
 * file record made at creation (its owner fixed then), and the finished bytes are stored and
 * published through `Files` like any upload. @tus/server is an ES module, loaded (with Node's
 * require of ES modules) on first use: the sweep at start needs the store alone, so a server no
 * client sends a resumable upload never loads it (about 1 MB of heap).
 */
export class TusUploads {
  private stored?: Promise<ReadableStore>;
  private loaded?: Promise<{ server: Server; store: ReadableStore }>;
  /**
   * Upload ids are this prefix plus the file id: in a bucket, `<S3_PREFIX>.tus/`, a dot directory
   * stowage's own keys never use, so the bucket's listing and multipart sweep leave uploads in
   * progress alone. Upload URLs carry the file id alone.
   */
  private readonly idPrefix: string;
  /** Finishes under way in this process, so a retried request doesn't store the bytes twice. */
  private readonly finishing = new Map<string, Promise<void>>();

  constructor(private readonly deps: TusDeps) {
    this.idPrefix = deps.storage.driver === 's3' ? `${deps.storage.s3?.prefix ?? ''}${TUS_DIR}` : '';
  }

  private uploadIdOf(fileId: string): string {
    return this.idPrefix + fileId;
  }

  private fileIdOf(uploadId: string): string {
    return uploadId.slice(this.idPrefix.length);
  }

  /** Lets the tus server answer `req` for `who`. */
  async handle(req: IncomingMessage, res: ServerResponse, who: TusCaller): Promise<void> {
    const { server } = await this.load();
    await caller.run(who, () => server.handle(req, res));
  }

  /**
   * The pending record of a new upload, its size (Upload-Length) reserved against the owner's
   * quota: made before the tus server takes the request, so a refusal (413 quota_exceeded) is
   * answered as stowage's JSON error and nothing is created.
   */
  expect(owner: string, meta: { filename?: string; filetype?: string }, size: number, lifetimeMs?: number): Promise<FileRecord> {
    return this.deps.files.expect(
      { owner, originalName: meta.filename || 'upload', contentType: meta.filetype || 'application/octet-stream', lifetimeMs },
      { size, expiresAt: new Date(Date.now() + this.deps.expiryMs) },
    );
  }

  /** How far the upload behind a pending record got; undefined when its bytes are gone. */
  async progress(id: string): Promise<{ offset: number; size?: number } | undefined> {
    const { store } = await this.load();
    return store.getUpload(this.uploadIdOf(id)).then(
      (u) => ({ offset: u.offset, size: u.size }),
      () => undefined,
    );
  }

  /**
   * Turns a fully received upload into a ready file: its bytes stored under the record's key
   * (when their sha256 was computed on the way in, unread: moved there on a volume, copied by the
   * bucket on S3; else read, copied and hashed once), then published; the tus copy goes last. A
   * crash before that leaves the upload complete and the record pending: the client's next HEAD
   * finishes it. A crash between a move and the publish leaves a pending record whose upload is
   * gone: it expires like any.
   */
  finish(record: FileRecord, log: Logger): Promise<void> {
    let running = this.finishing.get(record.id);
    if (!running) {
      running = this.complete(record, log).finally(() => this.finishing.delete(record.id));
      this.finishing.set(record.id, running);
    }
    return running;
  }

  /**
   * Removes the bytes of the uploads whose records are past their expiry (TUS_EXPIRY), before the
   * expired-upload sweep removes the records. A directory store also drops what it holds past
   * the expiry with no record left (a sweep cut short); in a bucket such an upload stays, and
   * the doctor reports it (`tus_leftover`).
   */
  async sweep(now = new Date()): Promise<number> {
    const store = await this.store();
    let removed = 0;
    for (const record of await this.deps.files.expiredUploads(now, 500)) {
      const id = this.uploadIdOf(record.id);
      await this.deps.hashes.delete(record.id);
      await this.deps.locks.forget(record.id);
      if (!(await store.getUpload(id).then(() => true, () => false))) continue;
      await store.remove(id);
      removed++;
    }
    if (this.deps.storage.driver !== 's3') removed += await store.deleteExpired();
    return removed;
  }

  private async complete(record: FileRecord, log: Logger): Promise<void> {
    const { files, hashes } = this.deps;
    const { store } = await this.load();
    const id = this.uploadIdOf(record.id);
    const upload = await store.getUpload(id);
    // Bytes hashed on the way in are put in place unread (moved on a volume, copied by the
    // bucket on S3); else read once, copied and hashed.
    const sha256 = await finishedSha256(hashes, record.id, upload.offset);
    const unread = sha256 && (await this.placeUnread(record, upload, sha256, log));
    const stored = unread || (await files.fill(record, await store.read(id)));
    try {
      await files.publish(record.owner, [{ id: record.id, size: stored.size, sha256: stored.sha256 }]);
    } catch (err) {
      await files.discardUnpublished([record], err);
      throw err;
    }
    log.info({ event: 'upload', fileId: record.id, owner: record.owner, size: stored.size, outcome: 'stored', via: 'tus', bytesRead: !unread }, 'upload stored');
    await Promise.all([store.removeFinished(id), hashes.delete(record.id)]).catch((err: unknown) =>
      log.warn({ err, fileId: record.id }, 'could not remove the tus copy of a stored upload'),
    );
  }

  /** The finished upload's bytes under the record's key without reading them; undefined when the store can't. */
  private placeUnread(record: FileRecord, upload: Upload, sha256: string, log: Logger): Promise<StoredFile | undefined> {
    const { storage } = upload;
    if (storage?.type === 'file') return this.deps.files.adopt(record, storage.path, sha256);
    if (storage?.type !== 's3') return Promise.resolve(undefined);
    // The object's key in the store (the upload id less S3_PREFIX). A bucket that can't copy it
    // (a provider without the call, a copy that timed out or came out another size) still lets
    // it be read.
    return this.deps.files.adoptObject(record, TUS_DIR + record.id, { size: upload.offset, sha256 }).catch((err: unknown) => {
      log.warn({ err, fileId: record.id }, 'the bucket could not copy a finished tus upload: reading it instead');
      return undefined;
    });
  }

  /** Cancels an unfinished upload whose bytes the tus server removed (termination): its record and hash go too. */
  async terminated(record: FileRecord): Promise<void> {
    await this.deps.files.discard(record);
    await this.deps.hashes.delete(record.id);
    await this.deps.locks.forget(record.id);
  }

  private load(): Promise<{ server: Server; store: ReadableStore }> {
    this.loaded ??= this.build();
    return this.loaded;
  }

  private store(): Promise<ReadableStore> {
    this.stored ??= this.dataStore().then((data) => {
      const hashed = addHashing(data, this.deps.hashes, (id) => this.fileIdOf(id), data.readRange?.bind(data));
      return addChecksums(hashed, path.join(this.deps.workDir, 'tus-chunks'), () => caller.getStore()?.checksum) as ReadableStore;
    });
    return this.stored;
  }

  private async build(): Promise<{ server: Server; store: ReadableStore }> {
    const { Server, MemoryLocker } = await import('@tus/server');
    const { files } = this.deps;
    const uploadIdOf = (id: string) => this.uploadIdOf(id);
    const fileIdOf = (id: string) => this.fileIdOf(id);
    const store = await this.store();
    const server = new Server({
      path: TUS_PATH,
      datastore: store,
      // One PATCH at a time per upload: in this process a second one stops the first (tus's
      // rule); on another instance it is refused (423).
      locker: sharedLocker(new MemoryLocker(), { locks: this.deps.locks, instances: this.deps.instances, instance: this.deps.instance, fileIdOf }),
      generateUrl: (_req, { path: base, id }) => `${base}/${fileIdOf(id)}`,
      getFileIdFromRequest: (_req, lastPath) => lastPath && uploadIdOf(lastPath),
      // Browsers may send a chunk's checksum (the checksum extension).
      allowedHeaders: ['Upload-Checksum'],
      // CORS is the app's (CORS_ORIGINS): tus adds no Access-Control-Allow-Origin of its own,
      // but its Access-Control-Expose-Headers replaces the app's, so it names the Machine too.
      allowedOrigins: () => false,
      exposedHeaders: [MACHINE_HEADER],
      namingFunction() {
        const record = caller.getStore()?.created;
        if (!record) throw new Error('tus creation without its record');
        return uploadIdOf(record.id);
      },
      onUploadFinish: async (_req, upload) => {
        const who = caller.getStore();
        const record = who && (await files.get(who.owner, fileIdOf(upload.id)));
        if (!who || !record) throw { status_code: 404, body: 'Not Found\n' };
        await this.finish(record, who.log);
        return {};
      },
    });
    return { server, store };
  }

  private async dataStore(): Promise<DataStore & FinishedRemover & { readRange?(id: string, start: number, end: number): Readable }> {
    const { storage, expiryMs, workDir } = this.deps;
    if (storage.driver === 's3' && storage.s3) return s3DataStore(storage.s3, expiryMs);
    const { FileStore } = await import('@tus/file-store');
    class FinishedFileStore extends FileStore {
      /** Bytes `start` to `end` (exclusive) of an upload, to catch its hash up after a cut PATCH. */
      readRange(id: string, start: number, end: number): Readable {
        return fs.createReadStream(path.join(this.directory, id), { start, end: end - 1 });
      }

      /** The bytes may have been moved into the store already: what is left goes. */
      async removeFinished(id: string): Promise<void> {
        await fsp.rm(path.join(this.directory, id), { force: true });
        await this.configstore.delete(id);
      }
    }
    // Beside the files, on the same volume; a dot directory, so never listed as a blob. The
    // memory store keeps them in this process's work directory, gone with the process.
    const directory = storage.driver === 'memory' ? path.join(workDir, 'tus') : path.join(storage.path, '.tus');
    // Made now: the first sweep (at start-up) lists it before any upload is created.
    await fsp.mkdir(directory, { recursive: true });
    return new FinishedFileStore({ directory, expirationPeriodInMilliseconds: expiryMs });
  }
}

/** The `filename`, `filetype` and `expiresIn` a creation request announces, undefined when its metadata is malformed. */
export function announced(header: string | undefined): { filename?: string; filetype?: string; expiresIn?: string } | undefined {
  const metadata = parseUploadMetadata(header);
  return metadata && { filename: metadata.filename, filetype: metadata.filetype, expiresIn: metadata.expiresIn };
}
