import { type Hash, createHash } from 'node:crypto';
import os from 'node:os';
import { type Readable, Transform, type TransformCallback, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type HashClient, HashThread } from './hash-thread';

export interface Measured {
  size: number;
  sha256: string;
}

export interface MeterOptions {
  /** Hash on the process's sha256 thread. Default: when the machine has more than one core. */
  offThread?: boolean;
  /** Runs when the input has ended, before the output does: an error returned fails the stream. */
  check?: (measured: Measured) => Error | undefined;
}

const BLOCK_SIZE = 1024 * 1024;
/** Blocks in flight per stream: the thread hashes some while the main thread fills the next. */
const BLOCKS_PER_STREAM = 4;
let nextId = 0;

/**
 * Passes a stream through unchanged while measuring its size and sha256.
 *
 * The hashing runs on a worker thread. On the upload path the main thread already spends its time
 * reading the socket and parsing multipart, and sha256 (about 0.65 s per GiB here) on top of that
 * made it the bottleneck. Moved off it, the main thread's CPU for a 1 GiB upload fell by about
 * 0.5 s (`npm run bench -- upload`; see hash-thread.ts for why the thread runs niced).
 * Chunks are copied into 1 MiB blocks that are transferred, not cloned, to the thread and back,
 * so the main thread pays one memcpy per byte and one message per MiB. A stream shorter than one
 * block is hashed right here at its end, without a round trip.
 */
export class Sha256Meter extends Transform implements HashClient {
  readonly hashId = nextId++;
  size = 0;
  private result: Measured | undefined;
  private readonly inline: Hash | null;
  private readonly check: MeterOptions['check'];
  private thread: HashThread | null = null;
  private block: Buffer | null = null;
  private fill = 0;
  private readonly free: Buffer[] = [];
  private allocated = 0;
  private wakeFiller: (() => void) | null = null;
  private failure: Error | null = null;
  private digest: { resolve(hex: string): void; reject(err: Error): void } | null = null;

  constructor({ offThread = os.availableParallelism() > 1, check }: MeterOptions = {}) {
    super();
    this.inline = offThread ? null : createHash('sha256');
    this.check = check;
  }

  /** Size and sha256 of everything that passed; available once the stream has ended. */
  get measured(): Measured {
    if (!this.result) throw new Error('The stream has not ended yet.');
    return this.result;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.size += chunk.length;
    this.push(chunk);
    if (this.inline) {
      this.inline.update(chunk);
      return done();
    }
    this.copyOut(chunk).then(() => done(), done);
  }

  override _flush(done: TransformCallback): void {
    this.sha256().then((sha256) => {
      this.result = { size: this.size, sha256 };
      done(this.check?.(this.result));
    }, done);
  }

  override _destroy(err: Error | null, done: (error: Error | null) => void): void {
    this.thread?.drop(this.hashId);
    this.failure ??= err ?? new Error('The stream was destroyed.');
    this.wake();
    done(err);
  }

  returned(block: ArrayBuffer): void {
    this.free.push(Buffer.from(block));
    this.wake();
  }

  digested(hex: string): void {
    this.digest?.resolve(hex);
  }

  failed(err: Error): void {
    this.failure = err;
    this.digest?.reject(err);
    this.wake();
  }

  private async copyOut(chunk: Buffer): Promise<void> {
    for (let offset = 0; offset < chunk.length; ) {
      this.block ??= await this.freeBlock();
      const copied = chunk.copy(this.block, this.fill, offset);
      this.fill += copied;
      offset += copied;
      if (this.fill === BLOCK_SIZE) this.send();
    }
  }

  private async sha256(): Promise<string> {
    if (this.inline) return this.inline.digest('hex');
    if (!this.thread) return createHash('sha256').update(this.block?.subarray(0, this.fill) ?? Buffer.alloc(0)).digest('hex');
    if (this.failure) throw this.failure;
    if (this.fill > 0) this.send();
    const hex = new Promise<string>((resolve, reject) => {
      this.digest = { resolve, reject };
    });
    this.thread.end(this.hashId);
    return hex;
  }

  private send(): void {
    // Destroyed while a block was being filled: joining the thread now would never be undone.
    if (this.failure) throw this.failure;
    this.thread ??= HashThread.join(this);
    this.thread.update(this.hashId, this.block!.buffer as ArrayBuffer, this.fill);
    this.block = null;
    this.fill = 0;
  }

  private async freeBlock(): Promise<Buffer> {
    for (;;) {
      if (this.failure) throw this.failure;
      const block = this.free.pop();
      if (block) return block;
      if (this.allocated < BLOCKS_PER_STREAM) {
        this.allocated++;
        // Its own ArrayBuffer, not a slice of Node's shared pool, so that it can be transferred.
        return Buffer.from(new ArrayBuffer(BLOCK_SIZE));
      }
      await new Promise<void>((resolve) => {
        this.wakeFiller = resolve;
      });
    }
  }

  private wake(): void {
    const resolve = this.wakeFiller;
    this.wakeFiller = null;
    resolve?.();
  }
}

/** Size and sha256 of a stream, read once without holding it in memory. */
export async function measure(body: Readable): Promise<Measured> {
  const meter = new Sha256Meter();
  await pipeline(body, meter, new Writable({ write: (_chunk, _encoding, done) => done() }));
  return meter.measured;
}
