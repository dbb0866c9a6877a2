import { pipeline, Transform } from 'node:stream';
import type { FileRecord } from '../catalog/files';
import type { Store } from '../storage/store';
import { verifying } from './verify';

/**
 * Streams a record's blob from one store into another under the same key, verified against the
 * record's size and sha256 on the way: the target only publishes the copy if it matches
 * (otherwise the put rejects with BlobMismatch and leaves nothing). Used both ways: primary to
 * mirror (the mirror task) and mirror to primary (a restore). `onChunk` is called as bytes pass.
 */
export async function copyVerified(from: Store, to: Store, record: FileRecord, signal?: AbortSignal, onChunk?: () => void): Promise<number> {
  const size = Number(record.size);
  const moving = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      onChunk?.();
      callback(null, chunk);
    },
  });
  const body = pipeline(await from.get(record.key), verifying({ size, sha256: record.sha256 }), moving, () => undefined);
  await to.put(record.key, body, { signal, contentType: record.content_type });
  return size;
}
