import http from 'node:http';
import type net from 'node:net';
import { PassThrough } from 'node:stream';
import { StoreUnavailable } from '../../src/errors';
import { S3Store } from '../../src/storage/s3';
import { type FaultProxy, startFaultProxy } from '../helpers/fault-proxy';
import { type S3TestServer, startS3Server } from '../helpers/s3server';
import { chunked, randomData, readAll } from '../helpers/streams';

/**
 * Every S3 call is bounded when the endpoint stalls (accepts connections, then sends nothing):
 * s3rver behind a proxy that a test switches to `stall`. A stalled attempt is not retried, so a
 * call gives up within one S3_REQUEST_TIMEOUT_MS.
 */

const TIMEOUT_MS = 1000;
/** Scheduling slack on a loaded machine. */
const MARGIN_MS = 1000;

let s3: S3TestServer;
let proxy: FaultProxy;
let store: S3Store;
/**
 * The same bucket with the default timeouts, straight to s3rver: writes what the tests read, which
 * a loaded machine's s3rver took over 1 s to take (8 MiB) in a CI rehearsal.
 */
let setup: S3Store;
beforeAll(async () => {
  s3 = await startS3Server();
  proxy = await startFaultProxy(s3.endpoint);
  store = new S3Store(s3.storeOptions({ endpoint: proxy.endpoint, connectTimeoutMs: TIMEOUT_MS, requestTimeoutMs: TIMEOUT_MS }));
  setup = new S3Store(s3.storeOptions());
});
afterAll(async () => {
  await store.close();
  await setup.close();
  await proxy.close();
  await s3.close();
});
afterEach(() => proxy.set('pass'));

/** The call's error and how long it took to give up. */
async function failure(call: () => Promise<unknown>): Promise<{ err: unknown; ms: number }> {
  const started = Date.now();
  const err = await call().then(
    () => undefined,
    (e: unknown) => e,
  );
  return { err, ms: Date.now() - started };
}

function expectStall({ err, ms }: { err: unknown; ms: number }, timeouts = 1) {
  expect(err).toBeInstanceOf(StoreUnavailable);
  expect((err as Error).message).toMatch(/^The s3 store did not answer in time to /);
  expect(ms).toBeGreaterThanOrEqual(timeouts * TIMEOUT_MS - 50);
  expect(ms).toBeLessThan(timeouts * TIMEOUT_MS + MARGIN_MS);
}

it('every call gives up within one request timeout while the store stalls, and works again once it answers', async () => {
  await setup.put('kept', chunked(Buffer.from('kept bytes')));
  await proxy.set('stall');

  expectStall(await failure(() => store.put('small', chunked(Buffer.from('hello')))));
  expectStall(await failure(() => store.put('large', chunked(randomData(12 * 1024 * 1024)))));
  expectStall(await failure(() => store.get('kept')));
  expectStall(await failure(() => store.get('kept', { start: 0, end: 3 })));
  expectStall(await failure(() => store.head('kept')));
  expectStall(await failure(() => store.delete('kept')));
  expectStall(await failure(() => store.list()));
  // Readiness: one attempt, its message naming the variable.
  const check = await failure(() => store.check());
  expect(check.err).toBeInstanceOf(StoreUnavailable);
  expect((check.err as Error).message).toMatch(/accepted the connection but sent no answer within 1 s \(S3_REQUEST_TIMEOUT_MS\) while checking bucket/);
  expect(check.ms).toBeLessThan(TIMEOUT_MS + MARGIN_MS);

  await proxy.set('pass');
  await store.check();
  expect((await readAll(await store.get('kept'))).toString()).toBe('kept bytes');
  await store.put('small', chunked(Buffer.from('hello')));
  expect((await store.list()).items.map((i) => i.key).sort()).toEqual(['kept', 'small']);
});

it('a multipart upload that stalls after its first part gives up within two request timeouts (the part, then aborting the upload)', async () => {
  const data = randomData(12 * 1024 * 1024);
  const body = new PassThrough();
  const put = store.put('multipart', body);
  body.write(data.subarray(0, 6 * 1024 * 1024));
  // The first part is on its way once the multipart upload exists.
  while ((await s3.inProgressUploads()).length === 0) await new Promise((resolve) => setImmediate(resolve));
  await proxy.set('stall');
  body.end(data.subarray(6 * 1024 * 1024));
  const { err, ms } = await failure(() => put);
  expect(err).toBeInstanceOf(StoreUnavailable);
  expect(ms).toBeLessThan(2 * TIMEOUT_MS + MARGIN_MS);
  await proxy.set('pass');
  expect(await store.head('multipart')).toBeUndefined();
});

describe('a download', () => {
  const data = randomData(8 * 1024 * 1024);
  beforeAll(() => setup.put('download', chunked(data)));

  it('whose body stalls mid-stream fails within the request timeout of the last byte, as StoreUnavailable', async () => {
    const body = await store.get('download');
    let received = 0;
    let stalledAt = 0;
    const { err } = await failure(async () => {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        received += chunk.length;
        if (received > 100_000 && !stalledAt) {
          await proxy.set('stall');
          stalledAt = Date.now();
        }
      }
    });
    expect(err).toBeInstanceOf(StoreUnavailable);
    expect((err as Error & { cause: Error }).cause.message).toBe('S3 sent nothing for 1 s in the middle of an answer (S3_REQUEST_TIMEOUT_MS)');
    expect(received).toBeLessThan(data.length);
    expect(Date.now() - stalledAt).toBeLessThan(TIMEOUT_MS + MARGIN_MS);
  });

  it('read by a client that stops reading for longer than the timeout is not cut: only waiting on S3 counts', async () => {
    const body = await store.get('download');
    const chunks: Buffer[] = [];
    for await (const chunk of body as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      // A client that pauses (a phone switching networks): S3 has the rest ready meanwhile.
      if (chunks.length === 1) await new Promise((resolve) => setTimeout(resolve, 2 * TIMEOUT_MS));
    }
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
  });
});

it('an answer whose body stops halfway (a listing) fails within the request timeout', async () => {
  // Headers and the start of the XML, then nothing: the SDK reads such bodies itself.
  const sockets = new Set<net.Socket>();
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/xml' });
    res.write('<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>stowage</Name>');
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const halfway = new S3Store(s3.storeOptions({ endpoint: `http://127.0.0.1:${port}`, connectTimeoutMs: TIMEOUT_MS, requestTimeoutMs: TIMEOUT_MS }));
  try {
    expectStall(await failure(() => halfway.list()));
  } finally {
    await halfway.close();
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
});
