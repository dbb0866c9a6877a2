import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type request from 'supertest';

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** A stream of `data` cut into chunks, like a network body arriving in pieces. */
export function chunked(data: Buffer, chunkSize = 64 * 1024): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.length; i += chunkSize) chunks.push(data.subarray(i, i + chunkSize));
  return Readable.from(chunks);
}

/** Emits `data`, then fails: a client that disconnects halfway through an upload. */
export function failingAfter(data: Buffer, error = new Error('client went away')): Readable {
  let sent = false;
  return new Readable({
    read() {
      if (!sent) {
        sent = true;
        this.push(data);
      } else {
        this.destroy(error);
      }
    },
  });
}

export function randomData(size: number): Buffer {
  return randomBytes(size);
}

/** A supertest parser for binary bodies, which supertest buffers only when asked to: `.buffer(true).parse(binary)`. */
export function binary(res: request.Response, done: (err: Error | null, body: Buffer) => void): void {
  const chunks: Buffer[] = [];
  res.on('data', (c: Buffer) => chunks.push(c));
  res.on('end', () => done(null, Buffer.concat(chunks)));
}
