import type { Logger } from 'pino';
import type { CatalogDb } from '../catalog/database';
import type { FileRecord } from '../catalog/files';
import type { Files } from '../files/files';
import { putHashed } from '../storage/put-hashed';
import type { Store } from '../storage/store';
import type { StoreSet } from '../storage/store-set';

export interface MigrationSummary {
  /** Records moved to the target (or, in a dry run, that would be). */
  copied: number;
  /** Records already in the target, or with no blob to move (not `ready`). */
  skipped: number;
  /** Records left where they were because their copy could not be made or verified. */
  failed: number;
  /** Bytes copied (or that would be). */
  bytes: number;
}

export interface MigrateOptions {
  db: CatalogDb;
  /** Where records' blobs are now. */
  stores: StoreSet;
  /** Reads each blob as a download would: from its store, else from the mirror. */
  files: Files;
  target: Store;
  concurrency: number;
  dryRun: boolean;
  /** Delete each source blob once its copy is verified and the record points at the copy. */
  deleteSource: boolean;
  log: Logger;
  /** Called once with the number of records to move, then after each record. */
  onStart?(toMove: number, bytes: number): void;
  onRecord?(summary: MigrationSummary): void;
}

const BATCH = 100;

class VerificationFailed extends Error {}

/**
 * Moves every ready record's blob into `target`: streams it from its store through sha256 into
 * the target, checks size and digest against the record, and only then switches the record's
 * `store`. A crash at any point leaves each record pointing at a complete, verified blob; a re-run
 * skips switched records and simply overwrites a half-made copy.
 */
export async function migrateStorage(options: MigrateOptions): Promise<MigrationSummary> {
  const { db, target } = options;
  const all = await db.selectFrom('files').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  const todo = await pending(db, target.driver)
    .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.sum<number>('size').as('bytes')])
    .executeTakeFirstOrThrow();
  const summary: MigrationSummary = { copied: 0, skipped: Number(all.n) - Number(todo.n), failed: 0, bytes: 0 };
  options.onStart?.(Number(todo.n), Number(todo.bytes ?? 0));
  if (options.dryRun) return { ...summary, copied: Number(todo.n), bytes: Number(todo.bytes ?? 0) };

  const records = candidates(db, target.driver);
  const worker = async () => {
    for await (const record of records) {
      try {
        const size = await moveOne(record, options);
        summary.copied++;
        summary.bytes += size;
      } catch (err) {
        summary.failed++;
        options.log.error({ err, fileId: record.id, key: record.key, from: record.store, to: target.driver }, 'blob not migrated');
      }
      options.onRecord?.({ ...summary });
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  return summary;
}

function pending(db: CatalogDb, targetDriver: string) {
  return db.selectFrom('files').where('store', '!=', targetDriver).where('status', '=', 'ready');
}

/** Records to move, by id. Concurrent workers share this one generator, which hands each out once. */
async function* candidates(db: CatalogDb, targetDriver: string): AsyncGenerator<FileRecord> {
  let after = '';
  for (;;) {
    const batch = await pending(db, targetDriver).selectAll().where('id', '>', after).orderBy('id').limit(BATCH).execute();
    if (batch.length === 0) return;
    yield* batch;
    after = batch[batch.length - 1].id;
  }
}

async function moveOne(record: FileRecord, { db, stores, files, target, deleteSource, log }: MigrateOptions): Promise<number> {
  const source = stores.get(record.store);
  const { size, sha256 } = await putHashed(target, record.key, await files.open(record, undefined, log), { contentType: record.content_type });
  if (size !== Number(record.size) || (record.sha256 !== null && sha256 !== record.sha256)) {
    await target.delete(record.key);
    throw new VerificationFailed(
      `The copy has ${size} bytes with sha256 ${sha256}; the record says ${record.size} bytes with sha256 ${record.sha256}.`,
    );
  }
  // updated_at stays: the bytes (and so Last-Modified) did not change. A record without a digest
  // (a direct upload completed without one) gets the one just measured.
  const switched = await db
    .updateTable('files')
    .set({ store: target.driver, sha256 })
    .where('id', '=', record.id)
    .where('store', '=', record.store)
    .where('status', '=', 'ready')
    .executeTakeFirst();
  if (switched.numUpdatedRows !== 1n) {
    // Deleted (or changed) while copying: the copy belongs to nobody.
    const now = await db.selectFrom('files').select('store').where('id', '=', record.id).executeTakeFirst();
    if (now?.store !== target.driver) await target.delete(record.key);
    throw new Error('The record changed while its blob was being copied; left as it is.');
  }
  if (deleteSource) await source.delete(record.key);
  log.info({ fileId: record.id, from: record.store, to: target.driver, size, sourceDeleted: deleteSource }, 'blob migrated');
  return size;
}
