import type { Logger } from 'pino';
import type { FileRecord } from '../catalog/files';
import type { Config } from '../config';
import { Conflict, NotFound, PayloadTooLarge, UnsupportedMediaType, Unprocessable } from '../errors';
import type { Files } from '../files/files';
import { lifetimeFrom } from '../files/lifetime';
import { canPresign, canPresignParts, type PartPresigner } from '../storage/presign';
import { PartsRejected, type Store } from '../storage/store';
import { measure } from '../storage/sha256-meter';
import type { StoreSet } from '../storage/store-set';
import { typeAllowed } from './content-types';

export interface DirectUploadRequest {
  name: string;
  size: number;
  contentType: string;
  sha256?: string;
  /** true: in parts whatever the size; false: one PUT; absent: one PUT up to 5 GiB, parts past it. */
  multipart?: boolean;
  /** How long the file is kept once completed: `"7d"`... (400 `invalid_expires_in` otherwise). */
  expiresIn?: string;
}

/** A part's presigned URL, and how many bytes to PUT there (the file's bytes from `(partNumber - 1) * partSize`). */
export interface PartUrl {
  partNumber: number;
  size: number;
  url: string;
}

/** What the client PUTs, and where: one PUT, or parts (their URLs a batch at a time, see `partUrls`). */
export type DirectUploadTicket = {
  record: FileRecord;
  expiresAt: Date;
} & (
  | {
      method: 'PUT';
      url: string;
      /** Headers the client must send with its PUT (they are signed into the URL). */
      headers: Record<string, string>;
    }
  | { method: 'multipart'; partSize: number; partCount: number; parts: PartUrl[]; nextPart: number | null }
);

/** A part the client uploaded, with the ETag its PUT answered. */
export interface CompletedPart {
  partNumber: number;
  etag: string;
}

/** S3 takes at most this many parts in one upload, and objects of up to 5 TiB. */
export const MAX_PARTS = 10_000;
const MAX_OBJECT_BYTES = 5 * 1024 ** 4;
/** S3's limit for one PUT. */
const MAX_PUT_BYTES = 5 * 1024 ** 3;
/** Part URLs handed out per answer: a client asks for the next batch when it gets there. */
export const PART_URL_BATCH = 100;
const MIB = 1024 ** 2;

export interface DirectUploadDeps {
  uploads: Config['uploads'];
  directUploads: Config['directUploads'];
  /** The primary store presigns the PUT; a record's own store is checked at completion. */
  stores: StoreSet;
  files: Files;
  log: Logger;
}

/**
 * Direct uploads: the client sends the bytes straight to the bucket with a presigned PUT (no
 * router timeout, no bytes through stowage), then asks stowage to check the object. Only a
 * checked object becomes a `ready` record. A file asked in parts (or past 5 GiB) goes
 * up in parts of an S3 multipart upload instead, each PUT to its own presigned URL; cancelling
 * or expiring aborts it (see `Files.discard`).
 */
export class DirectUploads {
  constructor(private readonly deps: DirectUploadDeps) {}

  async create(owner: string, request: DirectUploadRequest): Promise<DirectUploadTicket> {
    const { stores, files } = this.deps;
    const store = stores.primary;
    if (!canPresign(store)) {
      throw new Conflict(
        `Direct uploads need a store that can presign URLs (STORAGE=s3); this server stores files in "${store.driver}". Upload with POST /v1/files instead.`,
        'direct_upload_unsupported',
      );
    }
    const { maxBytes, allowedContentTypes } = this.deps.uploads;
    if (request.size > maxBytes) {
      throw new PayloadTooLarge(`The file is larger than the limit of ${maxBytes} bytes (MAX_UPLOAD_BYTES).`, 'file_too_large');
    }
    if (allowedContentTypes.length > 0 && !typeAllowed(allowedContentTypes, request.contentType)) {
      throw new UnsupportedMediaType(
        `Files of type ${request.contentType} are not accepted (allowed: ${allowedContentTypes.join(', ')}).`,
        'unsupported_file_type',
      );
    }
    if (request.size > MAX_OBJECT_BYTES) {
      throw new PayloadTooLarge(`The file is larger than an object store object can be (${MAX_OBJECT_BYTES} bytes, 5 TiB).`, 'file_too_large');
    }
    const lifetimeMs = request.expiresIn === undefined ? undefined : lifetimeFrom(request.expiresIn, 'expiresIn');
    const { expiresS } = this.deps.directUploads;
    const partSize = this.partSizeFor(request.size, request.multipart);
    if (partSize === undefined && request.size > MAX_PUT_BYTES) {
      throw new PayloadTooLarge(`One PUT takes at most ${MAX_PUT_BYTES} bytes (5 GiB): leave out "multipart": false to upload in parts.`, 'file_too_large');
    }
    if (partSize !== undefined && !canPresignParts(store)) {
      throw new Conflict(`Direct uploads in parts (over 5 GiB, or asked for) need an object store; the "${store.driver}" store cannot take them.`, 'direct_upload_unsupported');
    }
    const now = Date.now();
    const expiresAt = new Date(now + expiresS * 1000);
    let record = await files.expect(
      { owner, originalName: request.name, contentType: request.contentType, lifetimeMs },
      // Twice the URL's life: a PUT that starts just before the URL expires can still finish.
      { size: request.size, sha256: request.sha256, expiresAt: new Date(now + 2 * expiresS * 1000), partSize },
    );
    try {
      if (partSize !== undefined) {
        const parts = store as Store & PartPresigner;
        record = await files.noteMultipartUpload(record, await parts.createMultipartUpload(record.key, { contentType: request.contentType }));
        const batch = await this.presignParts(parts, record, 1);
        this.deps.log.info({ event: 'direct_upload', fileId: record.id, owner, size: request.size, partSize, outcome: 'created' }, 'direct upload in parts created');
        return { record, expiresAt, method: 'multipart', partSize, partCount: partCount(request.size, partSize), ...batch };
      }
      const url = await store.presignPut(record.key, { expiresIn: expiresS, contentType: request.contentType, contentLength: request.size });
      this.deps.log.info({ event: 'direct_upload', fileId: record.id, owner, size: request.size, outcome: 'created' }, 'direct upload created');
      return { record, expiresAt, method: 'PUT', url, headers: { 'Content-Type': request.contentType } };
    } catch (err) {
      await files.discard(record).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Undefined for one PUT: asked for, or by default up to the 5 GiB one PUT can take (clients
   * written before parts existed keep working). Else the size of its parts: the configured one,
   * raised (to whole MiB) when 10,000 parts of it would not hold the file.
   */
  private partSizeFor(size: number, multipart: boolean | undefined): number | undefined {
    if (multipart === false || (multipart === undefined && size <= MAX_PUT_BYTES)) return undefined;
    const configured = this.deps.directUploads.partSize;
    return Math.max(configured, Math.ceil(size / MAX_PARTS / MIB) * MIB);
  }

  /** Part URLs from `from` on, a batch at a time, for a pending upload in parts; pushes its expiry back. */
  async partUrls(owner: string, id: string, from: number): Promise<{ record: FileRecord; parts: PartUrl[]; nextPart: number | null; expiresAt: Date }> {
    const record = await this.pendingUpload(owner, id);
    const store = this.deps.stores.get(record.store);
    if (record.multipart_upload_id === null || !canPresignParts(store)) {
      throw new Conflict('This upload is one PUT to the URL its creation answered, not in parts.', 'not_a_multipart_upload');
    }
    const count = partCount(Number(record.size), Number(record.part_size));
    if (from > count) throw new Unprocessable(`The upload has ${count} parts; ask from 1 to ${count}.`, 'invalid_upload_request');
    const batch = await this.presignParts(store, record, from);
    const { expiresS } = this.deps.directUploads;
    const now = Date.now();
    // A client asking for more URLs is still at work: a large file may take longer than the
    // upload's first expiry, so each batch gives it as long again as a new upload gets.
    await this.deps.files.extendExpiry(record, new Date(now + 2 * expiresS * 1000));
    return { record, ...batch, expiresAt: new Date(now + expiresS * 1000) };
  }

  private async presignParts(store: PartPresigner, record: FileRecord, from: number): Promise<{ parts: PartUrl[]; nextPart: number | null }> {
    const size = Number(record.size);
    const partSize = Number(record.part_size);
    const count = partCount(size, partSize);
    const last = Math.min(count, from + PART_URL_BATCH - 1);
    const parts: PartUrl[] = [];
    for (let n = from; n <= last; n++) {
      const bytes = Math.min(partSize, size - (n - 1) * partSize);
      const url = await store.presignUploadPart(record.key, record.multipart_upload_id!, n, { expiresIn: this.deps.directUploads.expiresS, contentLength: bytes });
      parts.push({ partNumber: n, size: bytes, url });
    }
    return { parts, nextPart: last < count ? last + 1 : null };
  }

  /** A pending direct upload of `owner`, not yet expired (an expired one is removed on the way). */
  private async pendingUpload(owner: string, id: string, now = new Date()): Promise<FileRecord> {
    return this.stillPending(await this.deps.files.get(owner, id), now);
  }

  private async stillPending(record: FileRecord | undefined, now: Date): Promise<FileRecord> {
    if (!record) throw new NotFound('No upload with that id.');
    if (record.status === 'ready' || record.status === 'missing' || record.status === 'expired') throw new Conflict('The upload is complete.', 'upload_completed');
    if (record.status !== 'pending') throw new Conflict(`The upload failed: ${record.status_message ?? 'no reason recorded'}`, 'upload_failed');
    if (record.expires_at === null) throw new Conflict('This file is being uploaded through POST /v1/files, not directly.', 'not_a_direct_upload');
    if (record.expires_at < now.toISOString()) {
      await this.deps.files.discard(record);
      throw new Conflict('The upload expired before it was completed. Start a new one.', 'upload_expired');
    }
    return record;
  }

  /**
   * Cancels a pending direct upload: its parts are aborted, its object (if any) and record
   * removed. A ready or failed one is a file record now, removed with DELETE /v1/files/:id.
   */
  async cancel(owner: string, id: string): Promise<void> {
    const { files, log } = this.deps;
    const record = await files.get(owner, id);
    if (!record || (record.status === 'pending' && record.expires_at === null)) throw new NotFound('No upload with that id.');
    if (record.status !== 'pending') {
      const what = record.status === 'failed' ? `The upload failed (${record.status_message ?? 'no reason recorded'})` : 'The upload is complete';
      throw new Conflict(`${what}: remove the file with DELETE /v1/files/:id.`, record.status === 'failed' ? 'upload_failed' : 'upload_completed');
    }
    await files.discard(record);
    log.info({ event: 'direct_upload', fileId: id, owner, outcome: 'cancelled' }, 'direct upload cancelled');
  }

  /**
   * Checks the uploaded object against what was announced: its size, and its sha256 when one was
   * given (by reading the object once). A mismatch marks the record `failed` with the reason and
   * deletes the object. Completing a ready upload again returns it unchanged.
   */
  async complete(owner: string, id: string, parts?: CompletedPart[], now = new Date()): Promise<FileRecord> {
    const { stores, files, log } = this.deps;
    const existing = await files.get(owner, id);
    if (existing?.status === 'ready') return existing;
    const record = await this.stillPending(existing, now);
    const store = stores.get(record.store);
    let object = await store.head(record.key);
    if (!object && record.multipart_upload_id !== null && canPresignParts(store)) {
      await this.assemble(store, record, parts);
      object = await store.head(record.key);
    }
    if (!object) {
      throw new Conflict('No bytes have been uploaded yet: PUT them to the upload URL, then complete.', 'upload_incomplete');
    }
    const announced = Number(record.size);
    let reason: string | undefined;
    let sha256: string | null = null;
    if (object.size !== announced) {
      reason = `Uploaded ${object.size} bytes, but ${announced} were announced.`;
    } else if (record.sha256 !== null) {
      const measured = await measure(await store.get(record.key));
      sha256 = measured.sha256;
      if (measured.sha256 !== record.sha256) reason = `The uploaded bytes have sha256 ${measured.sha256}, not the announced ${record.sha256}.`;
    }
    if (reason) {
      await files.fail(record, reason);
      log.warn({ event: 'direct_upload', fileId: id, owner, outcome: 'failed', reason }, 'direct upload failed');
      throw new Unprocessable(reason, 'upload_verification_failed');
    }
    await files.publish(owner, [{ id: record.id, size: object.size, sha256 }]).catch(async (err: unknown) => {
      // Completed meanwhile by a concurrent request: that one published it.
      if ((await files.get(owner, id))?.status === 'ready') return;
      throw err;
    });
    log.info({ event: 'direct_upload', fileId: id, owner, size: object.size, outcome: 'stored' }, 'direct upload completed');
    return (await files.get(owner, id))!;
  }

  /**
   * Checks the client's parts against those the store holds (every part, each ETag as its PUT
   * answered), then has the store assemble the object. A mismatch leaves the upload open, so
   * the client can PUT a part again and complete again.
   */
  private async assemble(store: Store & PartPresigner, record: FileRecord, parts: CompletedPart[] | undefined): Promise<void> {
    const count = partCount(Number(record.size), Number(record.part_size));
    if (!parts) {
      throw new Unprocessable(`This upload is in ${count} parts: complete it with {"parts": [{"partNumber", "etag"}, ...]}, the ETag each part's PUT answered.`, 'parts_required');
    }
    const numbers = parts.map((p) => p.partNumber);
    if (parts.length !== count || numbers.some((n, i) => n !== i + 1)) {
      throw new Unprocessable(`List every part once, in order: part numbers 1 to ${count} (got ${parts.length} parts${numbers.length ? `, ${numbers.slice(0, 5).join(', ')}${numbers.length > 5 ? ', ...' : ''}` : ''}).`, 'invalid_upload_request');
    }
    const uploaded = new Map((await store.listParts(record.key, record.multipart_upload_id!)).map((p) => [p.partNumber, p]));
    const missing = numbers.filter((n) => !uploaded.has(n));
    if (missing.length > 0) {
      throw new Conflict(`Part${missing.length > 1 ? 's' : ''} ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', ...' : ''} of ${count} not uploaded yet: PUT ${missing.length > 1 ? 'them' : 'it'}, then complete.`, 'upload_incomplete');
    }
    for (const part of parts) {
      const stored = uploaded.get(part.partNumber)!.etag;
      if (unquoted(stored) !== unquoted(part.etag)) {
        throw new Unprocessable(`Part ${part.partNumber}'s ETag is ${stored}, not ${quoted(part.etag)}: send the ETag its PUT answered, or PUT the part again.`, 'upload_part_mismatch');
      }
    }
    try {
      await store.completeMultipartUpload(record.key, record.multipart_upload_id!, parts.map((p) => ({ partNumber: p.partNumber, etag: quoted(p.etag) })));
    } catch (err) {
      // A concurrent completion assembled it first: the upload is gone, the object there.
      if (await store.head(record.key).catch(() => undefined)) return;
      if (err instanceof PartsRejected) throw new Unprocessable(`The store refused the parts (${err.message}).`, 'upload_part_mismatch');
      throw err;
    }
  }
}

function partCount(size: number, partSize: number): number {
  return Math.ceil(size / partSize);
}

function unquoted(etag: string): string {
  return etag.replace(/"/g, '');
}

/** ETags as S3 writes them; a client may send one without its quotes (a header value read as text). */
function quoted(etag: string): string {
  return `"${unquoted(etag)}"`;
}
