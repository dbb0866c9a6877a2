import type { Config } from '../config';
import { ConfigError } from '../errors';
import { proveStore } from '../storage/prove';
import { FileSystemStore } from '../storage/filesystem';
import { newS3Store } from '../storage';
import type { Store } from '../storage/store';
import type { StoreSet } from '../storage/store-set';

export const TARGET_DRIVERS = ['s3', 'volume'] as const;
export type TargetDriver = (typeof TARGET_DRIVERS)[number];

/**
 * The store to migrate into, configured by the same variables as the server (S3_* for s3,
 * STORAGE_PATH for volume) whatever STORAGE says, and proven writable before anything moves.
 */
export async function openTarget(driver: TargetDriver, storage: Config['storage'], stores: StoreSet, instance?: string): Promise<Store> {
  if (stores.has(driver)) {
    const known = stores.get(driver);
    await proveStore(known, 'migration target');
    return known;
  }
  if (driver === 's3' && !storage.s3) {
    throw new ConfigError(['S3_BUCKET: set it (and the other S3_* variables) to the bucket to migrate to']);
  }
  const created = driver === 's3' ? await newS3Store(storage.s3!) : new FileSystemStore('volume', storage.volumePath, { instance });
  try {
    await proveStore(created, 'migration target');
  } catch (err) {
    await created.close();
    throw err;
  }
  return created;
}
