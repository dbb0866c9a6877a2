import type { Logger } from 'pino';
import type { FileRecord } from '../catalog/files';
import type { Config } from '../config';
import { Conflict, NotFound, PayloadTooLarge, UnsupportedMediaType, Unprocessable } from '../errors';
import type { Files } from '../files/files';
import { canPresign } from '../storage/presign';
import { measure } from '../storage/sha256-meter';
import type { StoreSet } from '../storage/store-set';
import { typeAllowed } from './content-types';

export interface DirectUploadRequest {
  name: string;
  size: number;
  contentType: string;
  sha256?: string;
}

export interface DirectUploadTicket {
  record: FileRecord;
  url: string;
  /** Headers the client must send with its PUT (they are signed into the URL). */
  headers: Record<string, string>;
  expiresAt: Date;
}

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
 * checked object becomes a `ready` record.
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
    const expiresS = this.deps.directUploads.expiresS;
    const now = Date.now();
    const record = await files.expect(
      { owner, originalName: request.name, contentType: request.contentType },
      // Twice the URL's life: a PUT that starts just before the URL expires can still finish.
      { size: request.size, sha256: request.sha256, expiresAt: new Date(now + 2 * expiresS * 1000) },
    );
    let url: string;
    try {
      url = await store.presignPut(record.key, { expiresIn: expiresS, contentType: request.contentType, contentLength: request.size });
    } catch (err) {
      await files.discard(record).catch(() => undefined);
      throw err;
    }
    this.deps.log.info({ event: 'direct_upload', fileId: record.id, owner, size: request.size, outcome: 'created' }, 'direct upload created');
    return { record, url, headers: { 'Content-Type': request.contentType }, expiresAt: new Date(now + expiresS * 1000) };
  }

  /**
   * Checks the uploaded object against what was announced: its size, and its sha256 when one was
   * given (by reading the object once). A mismatch marks the record `failed` with the reason and
   * deletes the object. Completing a ready upload again returns it unchanged.
   */
  async complete(owner: string, id: string, now = new Date()): Promise<FileRecord> {
    const { stores, files, log } = this.deps;
    const record = await files.get(owner, id);
    if (!record) throw new NotFound('No upload with that id.');
    if (record.status === 'ready') return record;
    if (record.status !== 'pending') {
      throw new Conflict(`The upload ${record.status}: ${record.status_message ?? 'no reason recorded'}`, 'upload_failed');
    }
    if (record.expires_at === null) throw new Conflict('This file is being uploaded through POST /v1/files, not directly.', 'not_a_direct_upload');
    const store = stores.get(record.store);
    if (record.expires_at < now.toISOString()) {
      await files.discard(record);
      throw new Conflict('The upload expired before it was completed. Start a new one.', 'upload_expired');
    }
    const object = await store.head(record.key);
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
}
