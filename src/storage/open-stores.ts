import fs from 'node:fs';
import type { Config } from '../config';
import { FileSystemStore } from './filesystem';
import { newS3Store, openStore } from './index';
import { proveStore } from './prove';
import type { Store } from './store';
import { StoreSet } from './store-set';

/**
 * The primary store (proven usable, as `openStore` does) plus the other stores records may still
 * point at: the volume at STORAGE_PATH when it exists, and the bucket when S3_BUCKET is set.
 * Secondaries are only read from and deleted from, so they are not probed: a read-only volume
 * left behind after a migration is fine. The mirror (STORAGE_MIRROR) is written to, so it is
 * proven like the primary: a wrong bucket or an unwritable directory stops startup.
 */
export async function openStores(storage: Config['storage'], instance?: string): Promise<StoreSet> {
  const primary = await openStore(storage, instance);
  const secondaries: Store[] = [];
  if (storage.driver !== 'volume' && fs.existsSync(storage.volumePath)) {
    secondaries.push(new FileSystemStore('volume', storage.volumePath, { instance }));
  }
  if (storage.driver !== 's3' && storage.s3) secondaries.push(await newS3Store(storage.s3));
  // A volume mirror is created even before its directory exists (it is the one store written to).
  if (storage.mirror === 'volume' && !secondaries.some((s) => s.driver === 'volume')) {
    secondaries.push(new FileSystemStore('volume', storage.volumePath, { instance }));
  }
  const set = new StoreSet(primary, secondaries, secondaries.find((s) => s.driver === storage.mirror));
  if (set.mirror) {
    try {
      await proveStore(set.mirror, 'mirror');
    } catch (err) {
      await set.close();
      throw err;
    }
  }
  return set;
}
