import type { Logger } from 'pino';
import type { FileRecord } from '../catalog/files';
import type { StoreSet } from '../storage/store-set';

/**
 * Best effort, after the record is gone: removes the mirror's copy of a deleted file. A failure
 * (the bucket unreachable) is logged and leaves an orphan in the mirror, which the doctor reports
 * and `--prune-orphans` removes; it never fails the delete the client asked for.
 */
export async function deleteMirrorCopy(stores: StoreSet, record: Pick<FileRecord, 'id' | 'store' | 'key'>, log: Logger): Promise<void> {
  const mirror = stores.mirror;
  if (!mirror || record.store === mirror.driver) return;
  try {
    await mirror.delete(record.key);
    log.info({ event: 'mirror.delete', fileId: record.id, key: record.key, outcome: 'deleted' }, 'mirror copy deleted');
  } catch (err) {
    log.error({ event: 'mirror.delete', fileId: record.id, key: record.key, outcome: 'failed', err }, 'record deleted but its mirror copy could not be removed');
  }
}
