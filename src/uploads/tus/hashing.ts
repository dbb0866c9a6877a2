import { type Readable, Transform } from 'node:stream';
import type { DataStore } from '@tus/utils';
import type { TusHashes } from '../../catalog/tus-hashes';
import { loadSha256, newSha256, type SavableSha256 } from './sha256-state';

/**
 * Hashes each upload's bytes as the store takes them, and saves the sha256 state with the offset
 * reached after each PATCH, so a resumed upload (on this process or another) goes on from there
 * and a finished one has its sha256 without reading its bytes again. A PATCH cut mid-way (the
 * process killed) can store bytes whose hash was not saved: a store that can read a range back
 * (`readRange`, a directory) hashes just those on the next PATCH; otherwise the upload's hash is
 * out of step and its finish reads the bytes once instead.
 */
export function addHashing(
  store: DataStore,
  hashes: TusHashes,
  fileIdOf: (uploadId: string) => string,
  readRange?: (uploadId: string, start: number, end: number) => Readable,
): DataStore {
  const write = store.write.bind(store);
  store.write = async (readable: Readable, id: string, offset: number) => {
    const fileId = fileIdOf(id);
    const hasher = await resume(hashes, fileId, offset, readRange && ((start) => readRange(id, start, offset)));
    let seen = 0;
    const tap = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hasher?.update(chunk);
        seen += chunk.length;
        done(null, chunk);
      },
    });
    readable.on('error', (err) => tap.destroy(err));
    const reached = await write(readable.pipe(tap), id, offset);
    if (hasher && reached - offset === seen) await hashes.save(fileId, { bytes: reached, state: hasher.save() });
    return reached;
  };
  return store;
}

/**
 * A hasher at `offset` of the upload, caught up from its saved state through `readFrom` when
 * that is behind; undefined when it can't be (no state, or no way to read the gap).
 */
async function resume(hashes: TusHashes, fileId: string, offset: number, readFrom?: (start: number) => Readable): Promise<SavableSha256 | undefined> {
  if (offset === 0) return newSha256();
  const saved = await hashes.get(fileId);
  if (saved && saved.bytes > offset) {
    // The store lost bytes it had taken (@tus/s3-store drops its incomplete part when killed
    // between taking it back and storing it again). The saved state hashed them: should the
    // upload come back to that offset, the bytes under it may not be the ones hashed.
    await hashes.delete(fileId);
    return undefined;
  }
  if (!saved || (saved.bytes < offset && !readFrom)) return undefined;
  const hasher = await loadSha256(saved.state);
  if (!hasher) return undefined;
  if (saved.bytes < offset) for await (const chunk of readFrom!(saved.bytes)) hasher.update(chunk as Buffer);
  return hasher;
}

/** The sha256 of an upload of `size` bytes, when its saved state covers all of them. */
export async function finishedSha256(hashes: TusHashes, fileId: string, size: number): Promise<string | undefined> {
  const saved = await hashes.get(fileId);
  if (saved?.bytes !== size) return undefined;
  return (await loadSha256(saved.state))?.digest();
}
