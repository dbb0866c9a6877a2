import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Sha256Meter, measure } from '../../src/storage/sha256-meter';
import { chunked, failingAfter, randomData, readAll, sha256 } from '../helpers/streams';

const MiB = 1024 * 1024;

/** Collects what comes out of the meter, to check that it passes bytes through unchanged. */
async function through(data: Buffer, meter: Sha256Meter, chunkSize?: number): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(chunked(data, chunkSize), meter, new Writable({ write: (c: Buffer, _e, done) => (out.push(c), done()) }));
  return Buffer.concat(out);
}

describe('Sha256Meter', () => {
  it.each([
    ['empty', 0],
    ['one byte', 1],
    ['several MiB in odd-sized chunks', 5 * MiB + 12345],
  ])('%s: bytes pass unchanged, size and sha256 are right', async (_name, size) => {
    const data = randomData(size);
    const meter = new Sha256Meter();
    const out = await through(data, meter, 77_777);
    expect(out.equals(data)).toBe(true);
    expect(meter.measured).toEqual({ size, sha256: sha256(data) });
  });

  it('a check that fails fails the stream before its end', async () => {
    const data = randomData(2 * MiB + 5);
    const meter = new Sha256Meter((m) => (m.sha256 === sha256(data) ? new Error(`refused ${m.size} bytes`) : undefined));
    await expect(through(data, meter)).rejects.toThrow(`refused ${2 * MiB + 5} bytes`);
  });

  it('has no measurement for a stream that failed', async () => {
    const meter = new Sha256Meter();
    const sink = new Writable({ write: (_c, _e, done) => done() });
    await expect(pipeline(failingAfter(randomData(MiB)), meter, sink)).rejects.toThrow('client went away');
    expect(() => meter.measured).toThrow('has not ended');
  });

  it('measure() reads a whole stream once', async () => {
    const data = randomData(2 * MiB + 3);
    const stream = chunked(data);
    expect(await measure(stream)).toEqual({ size: data.length, sha256: sha256(data) });
    expect(await readAll(stream)).toHaveLength(0);
  });
});
