import { Readable } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { BlobNotFound, InsufficientStorage } from '../errors';
import { assertValidKey, type BlobInfo, type ByteRange, type ListOptions, type ListPage, type PutOptions, type Store } from './store';

interface Entry {
  data: Buffer;
  modifiedAt: Date;
}

/** Keeps blobs in process memory, up to `maxBytes` in all. For tests and throwaway demos. */
export class MemoryStore implements Store {
  readonly driver = 'memory';
  readonly location = 'process memory';
  private readonly blobs = new Map<string, Entry>();
  private usedBytes = 0;
  /** Bytes held by puts still in progress, so concurrent uploads can't overshoot the cap. */
  private reservedBytes = 0;

  constructor(private readonly maxBytes: number) {}

  async put(key: string, body: Readable, options: PutOptions = {}): Promise<{ size: number }> {
    assertValidKey(key);
    const chunks: Buffer[] = [];
    let size = 0;
    const onAbort = () => body.destroy(options.signal?.reason);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      options.signal?.throwIfAborted();
      for await (const chunk of body.iterator({ destroyOnReturn: true })) {
        const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
        if (this.usedBytes + this.reservedBytes + buf.length > this.maxBytes) {
          throw new InsufficientStorage(
            `The memory store is full (MEMORY_STORE_MAX_BYTES=${this.maxBytes}).`,
          );
        }
        this.reservedBytes += buf.length;
        size += buf.length;
        chunks.push(buf);
      }
      options.signal?.throwIfAborted();
    } catch (err) {
      body.destroy();
      throw err;
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
      this.reservedBytes -= size;
    }
    const previous = this.blobs.get(key);
    if (previous) this.usedBytes -= previous.data.length;
    this.blobs.set(key, { data: Buffer.concat(chunks, size), modifiedAt: new Date() });
    this.usedBytes += size;
    return { size };
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    const entry = this.blobs.get(key);
    if (!entry) throw new BlobNotFound(key);
    const data = range ? entry.data.subarray(range.start, range.end + 1) : entry.data;
    return Readable.from([data], { objectMode: false });
  }

  async read(key: string, start: number, length: number): Promise<Buffer> {
    const entry = this.blobs.get(key);
    if (!entry) throw new BlobNotFound(key);
    if (start + length > entry.data.length) throw new Error(`The blob ${key} ends before byte ${start + length}.`);
    return Buffer.from(entry.data.subarray(start, start + length));
  }

  async head(key: string): Promise<BlobInfo | undefined> {
    const entry = this.blobs.get(key);
    return entry && { key, size: entry.data.length, modifiedAt: entry.modifiedAt };
  }

  async delete(key: string): Promise<void> {
    const entry = this.blobs.get(key);
    if (!entry) return;
    this.blobs.delete(key);
    this.usedBytes -= entry.data.length;
  }

  async list({ prefix = '', cursor, limit = 1000 }: ListOptions = {}): Promise<ListPage> {
    const keys = [...this.blobs.keys()]
      .filter((k) => k.startsWith(prefix) && (cursor === undefined || k > cursor))
      .sort();
    const page = keys.slice(0, limit);
    return {
      items: page.map((key) => ({ key, size: this.blobs.get(key)!.data.length, modifiedAt: this.blobs.get(key)!.modifiedAt })),
      cursor: keys.length > limit ? page[page.length - 1] : undefined,
    };
  }

  async probe(): Promise<void> {
    const key = `probe-${randomUUID()}`;
    this.blobs.set(key, { data: Buffer.from('probe'), modifiedAt: new Date() });
    this.blobs.delete(key);
  }

  async check(): Promise<void> {}

  async close(): Promise<void> {
    this.blobs.clear();
    this.usedBytes = 0;
  }
}
