import { execFile } from 'node:child_process';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { Writable } from 'node:stream';
import { Sha256Meter, measure } from '../../src/storage/sha256-meter';
import { chunked, failingAfter, randomData, readAll, sha256 } from '../helpers/streams';

const MiB = 1024 * 1024;

/** Collects what comes out of the meter, to check that it passes bytes through unchanged. */
async function through(data: Buffer, meter: Sha256Meter, chunkSize?: number): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(chunked(data, chunkSize), meter, new Writable({ write: (c: Buffer, _e, done) => (out.push(c), done()) }));
  return Buffer.concat(out);
}

for (const offThread of [true, false]) {
  describe(`Sha256Meter (${offThread ? 'on its thread' : 'inline'})`, () => {
    it.each([
      ['empty', 0, undefined],
      ['one byte', 1, undefined],
      ['under one block', 300 * 1024, undefined],
      ['exactly one block', MiB, undefined],
      ['one block and a byte', MiB + 1, undefined],
      ['several blocks in odd-sized chunks', 5 * MiB + 12345, 77_777],
    ])('%s: bytes pass unchanged, size and sha256 are right', async (_name, size, chunkSize) => {
      const data = randomData(size);
      const meter = new Sha256Meter({ offThread });
      const out = await through(data, meter, chunkSize);
      expect(out.equals(data)).toBe(true);
      expect(meter.measured).toEqual({ size, sha256: sha256(data) });
    });

    it('a check that fails fails the stream before its end', async () => {
      const data = randomData(2 * MiB + 5);
      const meter = new Sha256Meter({
        offThread,
        check: (m) => (m.sha256 === sha256(data) ? new Error(`refused ${m.size} bytes`) : undefined),
      });
      await expect(through(data, meter)).rejects.toThrow(`refused ${2 * MiB + 5} bytes`);
    });
  });
}

describe('Sha256Meter on its thread', () => {
  it('keeps concurrent streams apart', async () => {
    const inputs = Array.from({ length: 6 }, (_, i) => randomData(3 * MiB + i * 1000));
    const meters = inputs.map(() => new Sha256Meter({ offThread: true }));
    await Promise.all(inputs.map((data, i) => through(data, meters[i], 50_000 + i * 999)));
    expect(meters.map((m) => m.measured)).toEqual(inputs.map((d) => ({ size: d.length, sha256: sha256(d) })));
  });

  it('a source that fails mid-stream fails the meter, and the next stream still hashes', async () => {
    const meter = new Sha256Meter({ offThread: true });
    await expect(pipeline(failingAfter(randomData(3 * MiB)), meter, new Writable({ write: (_c, _e, done) => done() }))).rejects.toThrow(
      'client went away',
    );
    expect(() => meter.measured).toThrow('has not ended');
    const data = randomData(4 * MiB);
    expect(await measure(chunked(data))).toEqual({ size: data.length, sha256: sha256(data) });
  });

  it('measure() reads a whole stream once', async () => {
    const data = randomData(2 * MiB + 3);
    const stream = chunked(data);
    expect(await measure(stream)).toEqual({ size: data.length, sha256: sha256(data) });
    expect(await readAll(stream)).toHaveLength(0);
  });

  it('holds a command open until its digest arrives, and lets it exit once done, even after a failed stream', async () => {
    // A CLI (doctor --verify) whose only pending work is the digest must not exit before it; and
    // a stream destroyed mid-block must not leave the thread holding the process open.
    const script = `
      const { measure } = require('./dist/src/storage/sha256-meter');
      const { Readable } = require('node:stream');
      const data = Buffer.alloc(8 * 1024 * 1024, 7);
      const failing = new Readable({ read() { this.push(data); this.destroy(new Error('gone')); } });
      measure(failing).catch((err) => console.log(err.message))
        .then(() => measure(Readable.from([data])))
        .then((m) => console.log(m.size, m.sha256));
    `;
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], { timeout: 20_000 });
    expect(stdout.trim().split('\n')).toEqual(['gone', `${8 * MiB} ${sha256(Buffer.alloc(8 * MiB, 7))}`]);
  });
});
