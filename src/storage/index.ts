import type { Config } from '../config';
import { ConfigError } from '../errors';
import { FileSystemStore } from './filesystem';
import { MemoryStore } from './memory';
import { proveStore } from './prove';
import type { S3StoreOptions } from './s3-options';
import type { Store } from './store';

export type { Store } from './store';

/** The AWS SDK is loaded only by a server that uses a bucket: it costs about 20 MB of memory. */
export async function newS3Store(options: S3StoreOptions): Promise<Store> {
  const { S3Store } = await import('./s3');
  return new S3Store(options);
}

/** `instance` names the temp files of a directory store (see src/instance.ts). */
export async function createStore(storage: Config['storage'], instance?: string): Promise<Store> {
  switch (storage.driver) {
    case 'memory':
      return new MemoryStore(storage.memoryMaxBytes);
    case 'tmp':
    case 'volume':
      return new FileSystemStore(storage.driver, storage.path, { instance });
    case 's3':
      if (!storage.s3) throw new ConfigError(['S3_BUCKET: required when STORAGE=s3']);
      return newS3Store(storage.s3);
  }
}

/** The primary store, proven usable before the server takes a request (see `proveStore`). */
export async function openStore(storage: Config['storage'], instance?: string): Promise<Store> {
  const store = await createStore(storage, instance);
  try {
    await proveStore(store, 'primary');
  } catch (err) {
    await store.close();
    throw err;
  }
  return store;
}
