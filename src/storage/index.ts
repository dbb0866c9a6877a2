import type { Config } from '../config';
import { ConfigError, StoreUnavailable } from '../errors';
import { FileSystemStore } from './filesystem';
import { MemoryStore } from './memory';
import type { S3StoreOptions } from './s3';
import type { Store } from './store';

export type { Store } from './store';

/** The AWS SDK is loaded only by a server that uses a bucket: it costs about 20 MB of memory. */
export async function newS3Store(options: S3StoreOptions): Promise<Store> {
  const { S3Store } = await import('./s3');
  return new S3Store(options);
}

export async function createStore(storage: Config['storage']): Promise<Store> {
  switch (storage.driver) {
    case 'memory':
      return new MemoryStore(storage.memoryMaxBytes);
    case 'tmp':
    case 'volume':
      return new FileSystemStore(storage.driver, storage.path);
    case 's3':
      if (!storage.s3) throw new ConfigError(['S3_BUCKET: required when STORAGE=s3']);
      return newS3Store(storage.s3);
  }
}

/**
 * Creates the store's directories and proves it can write, read and delete before the server
 * takes a request, so no request is the first to find a missing or read-only directory.
 */
export async function openStore(storage: Config['storage']): Promise<Store> {
  const store = await createStore(storage);
  try {
    if (store instanceof FileSystemStore) await store.prepare();
    await store.probe();
  } catch (err) {
    await store.close();
    // The S3 probe already names the variable to fix (S3_BUCKET, S3_ENDPOINT, the keys...).
    if (store.driver === 's3' && err instanceof StoreUnavailable) throw new ConfigError([err.message], { cause: err });
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
    if (store.driver === 's3' && err instanceof StoreUnavailable) {
      throw new ConfigError([`${err.message} [the STORAGE_MIRROR=s3 store]`], { cause: err });
    }
    throw new ConfigError(
      [`STORAGE_PATH: ${store.location} is not writable (it is the STORAGE_MIRROR=volume store; set STORAGE_PATH to a writable directory)`],
      { cause: err },
    );
  }
}
