import { createHash } from 'node:crypto';
import { type Readable, Transform, pipeline } from 'node:stream';
import type { PutOptions, Store } from './store';

/**
 * Streams `body` into the store under `key`, computing its sha256 and size on the way, in one
 * pass and without buffering. Used for uploads and for generated outputs alike.
 */
export async function putHashed(
  store: Store,
  key: string,
  body: Readable,
  options: PutOptions = {},
): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
  });
  await store.put(key, pipeline(body, meter, () => undefined), options);
  return { size, sha256: hash.digest('hex') };
}
