import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';

/** sha256 (hex) and length of a stream, read once without holding it in memory. */
export async function hashStream(body: Readable): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { sha256: hash.digest('hex'), size };
}
