import type { Selectable } from 'kysely';
import type { ReadyHook } from '../catalog/files';
import type { TasksTable } from '../catalog/schema';
import type { StoreSet } from '../storage/store-set';
import { newTaskRow } from '../tasks/queue';

/** Task kind of a mirror copy; its payload is `{ fileId }`, its owner the file's owner. */
export const MIRROR_TASK = 'mirror';

/**
 * A mirror copy is retried (with the worker's doubling backoff, capped at 5 minutes) for about
 * an hour of object-storage outage before it is given up.
 */
export const MIRROR_MAX_ATTEMPTS = 20;

/**
 * With STORAGE_MIRROR set: queues a mirror copy for each file becoming ready, in the same
 * transaction, so a file can't turn ready without its copy being on record. Files already kept
 * in the mirror's store (migrated to the bucket) need no copy.
 */
export function mirrorOnReady(stores: StoreSet): ReadyHook | undefined {
  const mirror = stores.mirror;
  if (!mirror) return undefined;
  return async () => async (db, fileIds) => {
    const files = await db
      .selectFrom('files')
      .select(['id', 'owner', 'machine_id'])
      .where('id', 'in', fileIds)
      .where('store', '!=', mirror.driver)
      .execute();
    if (files.length === 0) return;
    await db.insertInto('tasks').values(files.map(mirrorTaskRow)).execute();
  };
}

/**
 * The task row that copies one file to the mirror. A file on a Fly Machine's volume is readable
 * only there, so its copy is pinned to that Machine's workers.
 */
export function mirrorTaskRow(file: { id: string; owner: string; machine_id: string | null }): Selectable<TasksTable> {
  return newTaskRow(MIRROR_TASK, file.owner, { fileId: file.id }, { maxAttempts: MIRROR_MAX_ATTEMPTS, machineId: file.machine_id });
}

/** A mirror task's payload column for a file, as `mirrorTaskRow` writes it: to find a file's tasks. */
export const mirrorPayload = (fileId: string): string => JSON.stringify({ fileId });
