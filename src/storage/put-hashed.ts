import { type Readable, pipeline } from 'node:stream';
import { type Measured, Sha256Meter } from './sha256-meter';
import type { PutOptions, Store } from './store';

/**
 * Streams `body` into the store under `key`, computing its sha256 and size on the way, in one
 * pass and without buffering. Used for uploads and for generated outputs alike.
 */
export async function putHashed(store: Store, key: string, body: Readable, options: PutOptions = {}): Promise<Measured> {
  const meter = new Sha256Meter();
  await store.put(key, pipeline(body, meter, () => undefined), options);
  return meter.measured;
}
