import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { DataStore } from '@tus/utils';

/**
 * The tus checksum extension, which @tus/server leaves to the store: a PATCH that sends
 * `Upload-Checksum: sha256 <base64>` is held in `spoolDir` while it is hashed, and only a chunk
 * whose digest matches reaches the store, so a mismatch (460) leaves the upload's offset where it
 * was. `checksumOf` gives the header of the request being handled.
 */
export function addChecksums(store: DataStore, spoolDir: string, checksumOf: () => string | undefined): DataStore {
  const write = store.write.bind(store);
  // Deferred lengths are refused at creation (limits apply before any byte): not advertised.
  store.extensions = [...store.extensions.filter((e) => e !== 'creation-defer-length'), 'checksum'];
  store.write = async (readable: Readable, id: string, offset: number) => {
    const header = checksumOf();
    if (header === undefined) return write(readable, id, offset);
    const [algorithm, expected] = header.trim().split(/\s+/);
    if (algorithm !== 'sha256' || !expected) {
      throw { status_code: 400, body: 'Unsupported checksum algorithm: send Upload-Checksum: sha256 <base64 digest>\n' };
    }
    await fsp.mkdir(spoolDir, { recursive: true });
    const spool = path.join(spoolDir, `tus-${randomUUID()}.part`);
    try {
      const hash = createHash('sha256');
      const hashing = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          hash.update(chunk);
          done(null, chunk);
        },
      });
      await pipeline(readable, hashing, fs.createWriteStream(spool));
      if (hash.digest('base64') !== expected) throw { status_code: 460, body: 'Checksum Mismatch\n' };
      return await write(fs.createReadStream(spool), id, offset);
    } finally {
      await fsp.rm(spool, { force: true });
    }
  };
  return store;
}
