import type { Config } from '../config';
import { ConfigError, StoreUnavailable } from '../errors';
import { FileSystemStore } from './filesystem';
import { MemoryStore } from './memory';
import { S3Store } from './s3';
import type { Store } from './store';

export type { Store } from './store';

export function createStore(storage: Config['storage']): Store {
  switch (storage.driver) {
    case 'memory':
      return new MemoryStore(storage.memoryMaxBytes);
    case 'tmp':
    case 'volume':
      return new FileSystemStore(storage.driver, storage.path);
    case 's3':
      if (!storage.s3) throw new ConfigError(['S3_BUCKET: required when STORAGE=s3']);
      return new S3Store(storage.s3);
  }
}

/**
 * Creates the store's directories and proves it can write, read and delete before the server
 * takes a request, so no request is the first to find a missing or read-only directory.
 */
export async function openStore(storage: Config['storage']): Promise<Store> {
  const store = createStore(storage);
  try {
    if (store instanceof FileSystemStore) await store.prepare();
    await store.probe();
  } catch (err) {
    await store.close();
    // The S3 probe already names the variable to fix (S3_BUCKET, S3_ENDPOINT, the keys...).
    if (store instanceof S3Store && err instanceof StoreUnavailable) throw new ConfigError([err.message], { cause: err });
    const fix =
      storage.driver === 'tmp'
        ? 'set TMPDIR to a writable directory, or STORAGE=memory'
        : 'set STORAGE_PATH to a writable directory, or STORAGE=tmp';
    throw new ConfigError([`${storage.pathVariable}: ${storage.path} is not writable (${fix})`], { cause: err });
  }
  return store;
}

/** Proves the STORAGE_MIRROR store writable at startup, naming the variables to fix. */
export async function proveMirror(store: Store): Promise<void> {
  try {
    if (store instanceof FileSystemStore) await store.prepare();
    await store.probe();
  } catch (err) {
    if (store instanceof S3Store && err instanceof StoreUnavailable) {
      throw new ConfigError([`${err.message} [the STORAGE_MIRROR=s3 store]`], { cause: err });
    }
    throw new ConfigError(
      [`STORAGE_PATH: ${store.location} is not writable (it is the STORAGE_MIRROR=volume store; set STORAGE_PATH to a writable directory)`],
      { cause: err },
    );
  }
}
