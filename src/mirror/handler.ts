import type { Logger } from 'pino';
import { z } from 'zod';
import type { FileCatalog } from '../catalog/files';
import { BlobNotFound } from '../errors';
import type { StoreSet } from '../storage/store-set';
import { TaskFailure } from '../tasks/task';
import type { TaskHandler } from '../tasks/worker';
import { copyVerified } from './copy-blob';
import { BlobMismatch } from './verify';

const payloadSchema = z.object({ fileId: z.string().min(1) });

/**
 * The `mirror` task: copies a ready file's blob from its store to the STORAGE_MIRROR store,
 * verified against the record, then records `mirrored_at`. Safe to run again: a copy already
 * recorded and present is left alone, and an unfinished one is simply overwritten. A file
 * deleted before or during the copy leaves nothing behind in the mirror.
 */
export function mirrorHandler(deps: { stores: StoreSet; catalog: FileCatalog; log: Logger }): TaskHandler {
  const { stores, catalog, log } = deps;
  return async ({ task, signal, working }) => {
    const mirror = stores.mirror;
    if (!mirror) throw new TaskFailure('mirror_not_configured', 'STORAGE_MIRROR is not set on the worker that ran this task.');
    const payload = payloadSchema.safeParse(task.payload);
    if (!payload.success) throw new TaskFailure('invalid_payload', 'A mirror task needs {"fileId": "..."}.');
    const { fileId } = payload.data;
    const record = await catalog.get(task.owner, fileId);
    if (!record) return 'The file was deleted before it was copied; nothing to do.';
    if (record.status !== 'ready') return `The file is ${record.status}; there is nothing to copy.`;
    if (record.store === mirror.driver) return `The file is already kept in the ${mirror.driver} store.`;
    if (record.mirrored_at && (await mirror.head(record.key))?.size === Number(record.size)) {
      return 'The mirror already holds a verified copy.';
    }

    let size: number;
    try {
      size = await copyVerified(stores.get(record.store), mirror, record, signal, working);
    } catch (err) {
      if (err instanceof BlobNotFound) {
        throw new TaskFailure('mirror_source_missing', `The file's bytes are gone from the ${record.store} store, so there is nothing to copy.`, { cause: err });
      }
      if (err instanceof BlobMismatch) {
        throw new TaskFailure('mirror_verification_failed', `Copy not kept: ${err.message}`, { cause: err });
      }
      throw err;
    }
    if (!(await catalog.markMirrored(record.id, record.key))) {
      await mirror.delete(record.key);
      return 'The file was deleted while it was being copied; the copy was removed.';
    }
    log.info({ event: 'mirror.copy', fileId: record.id, size, mirror: mirror.driver, outcome: 'copied' }, 'file copied to the mirror');
    return `Copied ${size} bytes to the ${mirror.driver} mirror.`;
  };
}
