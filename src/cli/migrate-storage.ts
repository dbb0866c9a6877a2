import type { Logger } from 'pino';
import type { Config } from '../config';
import { migrateStorage } from '../migrate-storage/migrate';
import { terminalProgress } from '../migrate-storage/progress';
import { openTarget, type TargetDriver } from '../migrate-storage/target';
import { openResources } from '../resources';

export interface MigrateStorageFlags {
  to: TargetDriver;
  concurrency: number;
  dryRun: boolean;
  deleteSource: boolean;
}

/**
 * `stowage migrate-storage --to s3`: moves every blob into the target store and prints one
 * summary line. Exits 1 when any record could not be moved (it stays where it was; re-run).
 */
export async function runMigrateStorage(config: Config, log: Logger, flags: MigrateStorageFlags): Promise<void> {
  const resources = await openResources(config, log);
  const { stores, db, files } = resources;
  try {
    const target = await openTarget(flags.to, config.storage, stores, resources.instances.self.id);
    const progress = process.stderr.isTTY && !flags.dryRun ? terminalProgress(process.stderr) : undefined;
    const summary = await migrateStorage({
      db,
      stores,
      files,
      target,
      concurrency: flags.concurrency,
      dryRun: flags.dryRun,
      deleteSource: flags.deleteSource,
      log,
      onStart: (toMove, bytes) => progress?.start(toMove, bytes),
      onRecord: (s) => progress?.update(s),
    });
    progress?.stop();
    if (!stores.has(target.driver)) await target.close();
    const counts = `copied ${summary.copied}, skipped ${summary.skipped}, failed ${summary.failed}, bytes ${summary.bytes}`;
    console.log(`migrate-storage${flags.dryRun ? ' (dry run, nothing changed; would have)' : ''}: ${counts} -> ${target.location}`);
    if (summary.failed > 0) process.exitCode = 1;
  } finally {
    await resources.close();
  }
}
