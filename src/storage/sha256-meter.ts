import { createHash } from 'node:crypto';
import { type Readable, Transform, type TransformCallback, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface Measured {
  size: number;
  sha256: string;
}

/**
 * Passes a stream through unchanged while measuring its size and sha256. `check` runs when the
 * input has ended, before the output does: an error it returns fails the stream, so a store's
 * atomic put never publishes bytes that didn't check out.
 *
 * Hashing on a worker thread was tried and measured (1 GiB uploads, 2 cores): it took about 0.5 s
 * of CPU per GiB off the main thread, but uploads were no faster (the medians of six runs were
 * within the runs' own spread of about 20%), and the thread cost 17 MB of RSS.
 */
export class Sha256Meter extends Transform {
  private readonly hash = createHash('sha256');
  private size = 0;
  private result: Measured | undefined;

  constructor(private readonly check?: (measured: Measured) => Error | undefined) {
    super();
  }

  /** Size and sha256 of everything that passed; available once the stream has ended. */
  get measured(): Measured {
    if (!this.result) throw new Error('The stream has not ended yet.');
    return this.result;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    this.result = { size: this.size, sha256: this.hash.digest('hex') };
    done(this.check?.(this.result));
  }
}

/** Size and sha256 of a stream, read once without holding it in memory. */
export async function measure(body: Readable): Promise<Measured> {
  const meter = new Sha256Meter();
  await pipeline(body, meter, new Writable({ write: (_chunk, _encoding, done) => done() }));
  return meter.measured;
}
