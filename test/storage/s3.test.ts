import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { CreateMultipartUploadCommand, PutObjectCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { StoreUnavailable } from '../../src/errors';
import { S3Store } from '../../src/storage/s3';
import { startS3ErrorRelay } from '../helpers/s3-error-relay';
import { startS3Server, type S3TestBucket, type S3TestServer } from '../helpers/s3server';
import { chunked, randomData, readAll, sha256 } from '../helpers/streams';
import { storeContract } from './contract';

const MiB = 1024 * 1024;

let server: S3TestServer;
beforeAll(async () => {
  server = await startS3Server();
});
afterAll(() => server.close());

storeContract('s3', async () => {
  const bucket = await server.newBucket();
  const store = new S3Store(bucket.storeOptions({ prefix: 'stowage/' }));
  return {
    store,
    // Whole bucket, internal probe objects included, plus multipart uploads left open.
    physicalKeys: async () => [
      ...(await bucket.objectKeys()),
      ...(await bucket.inProgressUploads()).map((u) => `(multipart upload) ${u.key}`),
    ],
    cleanup: async () => {},
  };
}, { copy: true });

/**
 * `total` random bytes in 64 KiB chunks, made only as the reader asks for them. `beforeChunk`
 * runs before each chunk with the offset it starts at.
 */
function lazyStream(total: number, beforeChunk: (offset: number) => Promise<void>): Readable {
  const chunkSize = 64 * 1024;
  return Readable.from(
    (async function* () {
      for (let offset = 0; offset < total; offset += chunkSize) {
        await beforeChunk(offset);
        yield randomData(Math.min(chunkSize, total - offset));
      }
    })(),
    { objectMode: false },
  );
}

describe('S3Store against s3rver', () => {
  let bucket: S3TestBucket;
  let store: S3Store;
  beforeEach(async () => {
    bucket = await server.newBucket();
    store = new S3Store(bucket.storeOptions({ prefix: 'p/' }));
  });
  afterEach(() => store.close());

  it('round-trips 64 MiB through a multipart upload', async () => {
    store = new S3Store(bucket.storeOptions({ partSize: 5 * MiB, queueSize: 4 }));
    const data = randomData(64 * MiB);
    expect(await store.put('big/blob', chunked(data, 256 * 1024))).toEqual({ size: data.length });
    expect(await store.head('big/blob')).toMatchObject({ key: 'big/blob', size: data.length });
    expect(sha256(await readAll(await store.get('big/blob')))).toBe(sha256(data));
    const tail = await readAll(await store.get('big/blob', { start: data.length - 10 * MiB, end: data.length - 1 }));
    expect(sha256(tail)).toBe(sha256(data.subarray(data.length - 10 * MiB)));
    expect(await bucket.inProgressUploads()).toEqual([]);
  });

  it('aborts the multipart upload when aborted after parts went up, and rejects with the reason', async () => {
    const controller = new AbortController();
    const reason = new Error('client cancelled');
    let inProgressAtAbort: { key: string; parts: number }[] = [];
    // The uploader reads ahead by at most the parts in flight (queueSize 2) plus the part being
    // filled and a few 64 KiB chunks, so by byte 6 x partSize at least two parts are stored.
    const body = lazyStream(100 * MiB, async (offset) => {
      if (offset !== 6 * 5 * MiB) return;
      inProgressAtAbort = await bucket.inProgressUploads();
      controller.abort(reason);
    });
    await expect(store.put('cancelled', body, { signal: controller.signal })).rejects.toBe(reason);
    expect(inProgressAtAbort).toEqual([{ key: 'p/cancelled', parts: expect.any(Number) }]);
    expect(inProgressAtAbort[0].parts).toBeGreaterThanOrEqual(2);
    expect(await store.head('cancelled')).toBeUndefined();
    expect(await bucket.objectKeys()).toEqual([]);
    expect(await bucket.inProgressUploads()).toEqual([]);
    expect(body.destroyed).toBe(true);
  });

  it('aborts the multipart upload when the body fails after parts went up', async () => {
    const body = lazyStream(100 * MiB, async (offset) => {
      if (offset === 6 * 5 * MiB) throw new Error('client went away');
    });
    await expect(store.put('broken', body)).rejects.toThrow('client went away');
    expect(await bucket.objectKeys()).toEqual([]);
    expect(await bucket.inProgressUploads()).toEqual([]);
  });

  it('rejects at once with the reason of an already aborted signal, uploading nothing', async () => {
    const reason = new Error('too late');
    const body = chunked(Buffer.from('x'));
    await expect(store.put('k', body, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(body.destroyed).toBe(true);
    expect(await bucket.objectKeys()).toEqual([]);
  });

  it('keeps keys under the prefix and hides probe objects from list', async () => {
    await store.put('a', chunked(Buffer.from('a')));
    const inspector = server.client();
    for (const name of ['1', '2', '3']) {
      await inspector.send(new PutObjectCommand({ Bucket: bucket.bucket, Key: `p/.stowage-probe/${name}`, Body: 'x' }));
    }
    await store.put('b', chunked(Buffer.from('b')));
    expect((await bucket.objectKeys()).sort()).toEqual(['p/.stowage-probe/1', 'p/.stowage-probe/2', 'p/.stowage-probe/3', 'p/a', 'p/b']);
    // The hidden keys sort first: they must not fill the first page and leave it empty.
    const first = await store.list({ limit: 1 });
    expect(first.items.map((i) => i.key)).toEqual(['a']);
    const second = await store.list({ limit: 1, cursor: first.cursor });
    expect(second.items.map((i) => i.key)).toEqual(['b']);
    expect(second.cursor).toBeUndefined();
  });

  it('probes from many stores at once (web, worker and release start together) all succeed, round after round', async () => {
    // Each probe writes, reads and deletes an object under .stowage-probe/; s3rver used to remove
    // that directory after one delete while another probe was writing into it, and crash.
    const stores = Array.from({ length: 16 }, () => new S3Store(bucket.storeOptions({ prefix: 'p/' })));
    try {
      for (let round = 0; round < 40; round++) await Promise.all(stores.map((s) => s.probe()));
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
    expect(await bucket.objectKeys()).toEqual([]);
  });

  it('lists the incomplete multipart uploads under its prefix begun before a time, with their bytes, a page at a time; aborting one twice is fine', async () => {
    const inspector = server.client();
    const begin = async (Key: string, parts: number[]) => {
      const { UploadId } = await inspector.send(new CreateMultipartUploadCommand({ Bucket: bucket.bucket, Key }));
      for (const [i, size] of parts.entries()) {
        await inspector.send(new UploadPartCommand({ Bucket: bucket.bucket, Key, UploadId, PartNumber: i + 1, Body: randomData(size) }));
      }
      return UploadId!;
    };
    const before = new Date(Date.now() - 60_000);
    const a = await begin('p/a/one', [5 * MiB, 1000]);
    const b = await begin('p/b/two', []);
    await begin('elsewhere/three', [1000]);
    const later = new Date(Date.now() + 60_000);

    expect((await store.listIncompleteUploads({ startedBefore: before })).items).toEqual([]);
    const all = await store.listIncompleteUploads({ startedBefore: later });
    expect(all).toEqual({
      items: [
        { key: 'a/one', uploadId: a, startedAt: expect.any(Date), bytes: 5 * MiB + 1000, abandoned: false },
        { key: 'b/two', uploadId: b, startedAt: expect.any(Date), bytes: 0, abandoned: false },
      ],
    });
    const first = await store.listIncompleteUploads({ startedBefore: later, limit: 1 });
    expect(first.items.map((u) => u.key)).toEqual(['a/one']);
    const second = await store.listIncompleteUploads({ startedBefore: later, limit: 1, cursor: first.cursor });
    expect(second.items.map((u) => u.key)).toEqual(['b/two']);

    await store.abortIncompleteUpload({ key: 'a/one', uploadId: a });
    await store.abortIncompleteUpload({ key: 'a/one', uploadId: a });
    expect((await store.listIncompleteUploads({ startedBefore: later })).items.map((u) => u.key)).toEqual(['b/two']);
    expect((await bucket.inProgressUploads()).map((u) => u.key).sort()).toEqual(['elsewhere/three', 'p/b/two']);
  });

  it('sets the content type given to put', async () => {
    await store.put('typed', chunked(Buffer.from('{}')), { contentType: 'application/json' });
    const res = await fetch(await store.presignGet('typed', { expiresIn: 60 }));
    expect(res.headers.get('content-type')).toBe('application/json');
  });

  it('copies a resumable upload\'s object (under .tus/) to a store key in the bucket, with the content type given', async () => {
    const data = randomData(6 * MiB + 3);
    await server.client().send(new PutObjectCommand({ Bucket: bucket.bucket, Key: 'p/.tus/up1', Body: data }));
    expect(await store.copy('.tus/up1', 'ab/file', { contentType: 'image/png' })).toEqual({ size: data.length });
    const res = await fetch(await store.presignGet('ab/file', { expiresIn: 60 }));
    expect(res.headers.get('content-type')).toBe('image/png');
    expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(sha256(data));
    expect((await bucket.objectKeys()).sort()).toEqual(['p/.tus/up1', 'p/ab/file']);
  });

  it('copies an object larger than one CopyObject in parts (UploadPartCopy), leaving no multipart upload', async () => {
    const parted = new S3Store(bucket.storeOptions({ prefix: 'p/', copyLimit: 5 * MiB }));
    // Every call the copy makes, through a relay that passes them on.
    const calls: string[] = [];
    const relay = await startS3ErrorRelay(bucket.endpoint, (req) => {
      calls.push(`${req.method} ${req.headers['x-amz-copy-source-range'] ?? ''}`.trim());
      return undefined;
    });
    const relayed = new S3Store(bucket.storeOptions({ prefix: 'p/', copyLimit: 5 * MiB, endpoint: relay.endpoint }));
    try {
      const data = randomData(12 * MiB + 1);
      await parted.put('big/source', chunked(data));
      expect(await relayed.copy('big/source', 'big/copy')).toEqual({ size: data.length });
      expect(sha256(await readAll(await parted.get('big/copy')))).toBe(sha256(data));
      // Three ranges of the source, copied by the bucket: no GET of its bytes.
      expect(calls.filter((c) => c.startsWith('PUT bytes=')).sort()).toEqual(
        [`PUT bytes=0-${5 * MiB - 1}`, `PUT bytes=${5 * MiB}-${10 * MiB - 1}`, `PUT bytes=${10 * MiB}-${12 * MiB}`].sort(),
      );
      expect(calls.filter((c) => c.startsWith('GET'))).toEqual([]);
      expect(await bucket.inProgressUploads()).toEqual([]);
    } finally {
      await Promise.all([parted.close(), relayed.close()]);
      await relay.close();
    }
  });

  it('aborts a multipart copy whose part the bucket refuses, leaving no object and no upload', async () => {
    const relay = await startS3ErrorRelay(bucket.endpoint, (req) =>
      req.headers['x-amz-copy-source-range'] === `bytes=${5 * MiB}-${10 * MiB - 1}` ? { status: 400, code: 'InvalidRequest', message: 'refused' } : undefined,
    );
    const relayed = new S3Store(bucket.storeOptions({ prefix: 'p/', copyLimit: 5 * MiB, endpoint: relay.endpoint }));
    try {
      await store.put('big/source', chunked(randomData(12 * MiB)));
      await expect(relayed.copy('big/source', 'big/copy')).rejects.toMatchObject({ name: 'InvalidRequest' });
      expect(await store.head('big/copy')).toBeUndefined();
      expect(await bucket.inProgressUploads()).toEqual([]);
    } finally {
      await relayed.close();
      await relay.close();
    }
  });

  describe('probe', () => {
    it('names S3_BUCKET when the bucket does not exist', async () => {
      const missing = new S3Store(bucket.storeOptions({ bucket: 'no-such-bucket' }));
      const err = await missing.probe().catch((e: unknown) => e);
      await missing.close();
      expect(err).toBeInstanceOf(StoreUnavailable);
      expect((err as Error).message).toBe(
        `S3_BUCKET: bucket "no-such-bucket" does not exist at ${bucket.endpoint} (create it, or set S3_BUCKET)`,
      );
      expect((err as Error).cause).toMatchObject({ name: 'NoSuchBucket' });
    });

    it('names S3_ENDPOINT when nothing listens there', async () => {
      const endpoint = await closedPortEndpoint();
      const unreachable = new S3Store(bucket.storeOptions({ endpoint }));
      const err = await unreachable.probe().catch((e: unknown) => e);
      await unreachable.close();
      expect(err).toBeInstanceOf(StoreUnavailable);
      expect((err as Error).message).toBe(
        `S3_ENDPOINT: ${endpoint} refused the connection while writing a probe object to bucket "${bucket.bucket}" (check S3_ENDPOINT, or unset it to use AWS S3)`,
      );
      expect((err as Error).cause).toBeDefined();
    });

    it('tries once more when S3 answers its write with 500 InternalError ("Please try again")', async () => {
      // A relay to s3rver that answers the first PUT as S3 does when it hiccups.
      let puts = 0;
      const relay = await startS3ErrorRelay(bucket.endpoint, (req) =>
        req.method === 'PUT' && puts++ === 0 ? { status: 500, code: 'InternalError', message: 'We encountered an internal error. Please try again.' } : undefined,
      );
      const store = new S3Store(bucket.storeOptions({ endpoint: relay.endpoint }));
      try {
        await expect(store.probe()).resolves.toBeUndefined();
        expect(puts).toBe(2); // the refused one, and the one that took
      } finally {
        await store.close();
        await relay.close();
      }
    });

    it('names the credential variables when the access key is refused', async () => {
      const denied = new S3Store(bucket.storeOptions({ credentials: { accessKeyId: 'NOT-A-KEY', secretAccessKey: 'x' } }));
      const err = await denied.probe().catch((e: unknown) => e);
      await denied.close();
      expect(err).toBeInstanceOf(StoreUnavailable);
      expect((err as Error).message).toMatch(/^AWS_ACCESS_KEY_ID\/AWS_SECRET_ACCESS_KEY: access to bucket "stowage-test-\d+" at http:\/\/127\.0\.0\.1:\d+ was denied \(InvalidAccessKeyId;/);
      expect((err as Error).cause).toMatchObject({ name: 'InvalidAccessKeyId' });
    });
  });

  describe('check (readiness, without writing)', () => {
    it('names S3_BUCKET when the bucket does not exist', async () => {
      const missing = new S3Store(bucket.storeOptions({ bucket: 'no-such-bucket' }));
      const err = await missing.check().catch((e: unknown) => e);
      await missing.close();
      expect(err).toBeInstanceOf(StoreUnavailable);
      expect((err as Error).message).toBe(`S3_BUCKET: bucket "no-such-bucket" does not exist at ${bucket.endpoint} (create it, or set S3_BUCKET)`);
    });

    it('names S3_ENDPOINT when nothing listens there', async () => {
      const endpoint = await closedPortEndpoint();
      const unreachable = new S3Store(bucket.storeOptions({ endpoint }));
      const err = await unreachable.check().catch((e: unknown) => e);
      await unreachable.close();
      expect((err as Error).message).toBe(
        `S3_ENDPOINT: ${endpoint} refused the connection while checking bucket "${bucket.bucket}" (check S3_ENDPOINT, or unset it to use AWS S3)`,
      );
    });

    it('names the credential variables when the access key is refused', async () => {
      const denied = new S3Store(bucket.storeOptions({ credentials: { accessKeyId: 'NOT-A-KEY', secretAccessKey: 'x' } }));
      const err = await denied.check().catch((e: unknown) => e);
      await denied.close();
      expect((err as Error).message).toMatch(/^AWS_ACCESS_KEY_ID\/AWS_SECRET_ACCESS_KEY: access to bucket "stowage-test-\d+" at http:\/\/127\.0\.0\.1:\d+ was denied/);
    });
  });

  it('wraps an unreachable endpoint as StoreUnavailable on reads and writes', async () => {
    const unreachable = new S3Store(bucket.storeOptions({ endpoint: await closedPortEndpoint() }));
    await expect(unreachable.get('x')).rejects.toBeInstanceOf(StoreUnavailable);
    await expect(unreachable.head('x')).rejects.toBeInstanceOf(StoreUnavailable);
    await expect(unreachable.put('x', chunked(Buffer.from('x')))).rejects.toBeInstanceOf(StoreUnavailable);
    await unreachable.close();
  });

  describe('presigned URLs', () => {
    it('downloads the bytes with the Content-Disposition and type asked for', async () => {
      const data = randomData(300_000);
      await store.put('files/report', chunked(data));
      const url = await store.presignGet('files/report', {
        expiresIn: 300,
        responseContentDisposition: 'attachment; filename="report.pdf"',
        responseContentType: 'application/pdf',
      });
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-disposition')).toBe('attachment; filename="report.pdf"');
      expect(res.headers.get('content-type')).toBe('application/pdf');
      expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(sha256(data));
    });

    it('uploads bytes straight to the bucket with a presigned PUT', async () => {
      const data = randomData(123_456);
      const url = await store.presignPut('direct/upload', {
        expiresIn: 300,
        contentType: 'image/png',
        contentLength: data.length,
      });
      // Both signed: S3 refuses a PUT with another type or size (s3rver checks no signature).
      expect(new URL(url).searchParams.get('X-Amz-SignedHeaders')).toBe('content-length;content-type;host');
      const res = await fetch(url, { method: 'PUT', body: data, headers: { 'content-type': 'image/png' } });
      expect(res.status).toBe(200);
      expect(await store.head('direct/upload')).toMatchObject({ key: 'direct/upload', size: data.length });
      expect(sha256(await readAll(await store.get('direct/upload')))).toBe(sha256(data));
    });

    it('uploads an object in parts PUT to presigned URLs, listed with their ETags, then assembled', async () => {
      const data = randomData(6 * 1024 * 1024);
      const uploadId = await store.createMultipartUpload('direct/parts', { contentType: 'application/octet-stream' });
      const slices = [data.subarray(0, 5 * 1024 * 1024), data.subarray(5 * 1024 * 1024)];
      const etags: string[] = [];
      for (const [i, slice] of slices.entries()) {
        const url = await store.presignUploadPart('direct/parts', uploadId, i + 1, { expiresIn: 300, contentLength: slice.length });
        const res = await fetch(url, { method: 'PUT', body: slice });
        expect(res.status).toBe(200);
        etags.push(res.headers.get('etag')!);
      }
      expect(await store.listParts('direct/parts', uploadId)).toEqual([
        { partNumber: 1, etag: etags[0], size: 5 * 1024 * 1024 },
        { partNumber: 2, etag: etags[1], size: 1024 * 1024 },
      ]);
      await store.completeMultipartUpload('direct/parts', uploadId, etags.map((etag, i) => ({ partNumber: i + 1, etag })));
      expect(sha256(await readAll(await store.get('direct/parts')))).toBe(sha256(data));
      expect(await bucket.inProgressUploads()).toEqual([]);
    });

    // Under WHEN_SUPPORTED the SDK would sign the CRC32 of an empty body into the URL, and S3
    // (not s3rver, which ignores it) would refuse every PUT whose bytes don't match it.
    it('signs no checksum into upload URLs, whatever S3_CHECKSUMS says', async () => {
      const supported = new S3Store(bucket.storeOptions({ checksums: 'when_supported' }));
      const urls = [
        await supported.presignPut('k', { expiresIn: 60, contentType: 'image/png', contentLength: 10 }),
        await supported.presignUploadPart('k', 'upload-id', 1, { expiresIn: 60, contentLength: 10 }),
      ];
      for (const url of urls) {
        const names = [...new URL(url).searchParams.keys()].map((k) => k.toLowerCase());
        expect(names.filter((k) => k.includes('checksum'))).toEqual([]);
      }
      await supported.close();
    });
  });
});

describe('S3Store when the server goes away mid-put', () => {
  let own: S3TestServer;
  beforeEach(async () => {
    own = await startS3Server();
  });
  afterEach(() => own.close());

  it('rejects with StoreUnavailable caused by the network error as soon as a call fails, stops reading the body, and lists the upload it could not abort as abandoned until it is aborted', async () => {
    const store = new S3Store(own.storeOptions({ prefix: 'p/' }));
    let killed = false;
    let read = 0;
    // Killed once the first two parts are up and none is in flight, then slow (about 1 MiB/s).
    // The store learns of the outage when the part being filled (10 to 15 MiB) goes up; it must
    // not wait for the other part reader to fill one more part (to 20 MiB) before giving up.
    const later = new Date(Date.now() + 60_000);
    const body = lazyStream(100 * MiB, async (offset) => {
      read = offset;
      if (killed) await new Promise((resolve) => setTimeout(resolve, 50));
      else if (offset >= 12 * MiB) {
        while (((await store.listIncompleteUploads({ startedBefore: later })).items[0]?.bytes ?? 0) < 10 * MiB) {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        await own.kill();
        killed = true;
      }
    });
    const err = await store.put('cut', body).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreUnavailable);
    // Under jest the SDK wraps the socket error (another realm's Error), keeping its message.
    expect(String((err as Error).cause)).toMatch(/ECONNREFUSED|ECONNRESET|socket hang up/);
    expect(read).toBeLessThan(17 * MiB);
    expect(body.destroyed).toBe(true);

    await own.restart();
    const [left] = await own.inProgressUploads();
    expect(left).toMatchObject({ key: 'p/cut' });
    // Abandoned: listed whatever its age.
    const { items } = await store.listIncompleteUploads({ startedBefore: new Date(0) });
    expect(items).toEqual([{ key: 'cut', uploadId: expect.any(String), startedAt: expect.any(Date), bytes: expect.any(Number), abandoned: true }]);
    expect(items[0].bytes).toBeGreaterThanOrEqual(5 * MiB);
    await store.abortIncompleteUpload(items[0]);
    expect(await own.inProgressUploads()).toEqual([]);
    expect((await store.listIncompleteUploads({ startedBefore: new Date(0) })).items).toEqual([]);
    await store.close();
  });
});

/** An endpoint on a port that was just free: connecting to it is refused. */
async function closedPortEndpoint(): Promise<string> {
  const probe = http.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return `http://127.0.0.1:${port}`;
}
