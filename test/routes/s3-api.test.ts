import http from 'node:http';
import net from 'node:net';
import { DeleteBucketCommand } from '@aws-sdk/client-s3';
import request from 'supertest';
import { loadConfig } from '../../src/config';
import { ConfigError } from '../../src/errors';
import { openResources } from '../../src/resources';
import { allRecords, buildTestApp, LogCapture, type TestApp } from '../helpers/app';
import { startS3Server, type S3TestBucket, type S3TestServer } from '../helpers/s3server';
import { s3Env } from '../helpers/s3env';
import { binary, randomData, sha256 } from '../helpers/streams';

const MiB = 1024 * 1024;

let server: S3TestServer;
let bucket: S3TestBucket;
let t: TestApp;
let listening: http.Server | undefined;
beforeAll(async () => {
  server = await startS3Server();
});
afterAll(() => server.close());
beforeEach(async () => {
  bucket = await server.newBucket();
});
afterEach(async () => {
  if (listening) await new Promise((resolve) => listening!.close(resolve));
  listening = undefined;
  await t?.close();
});

function upload(files: { name: string; data: Buffer; type?: string }[]) {
  let req = t.http().post('/v1/files');
  for (const f of files) req = req.attach('file', f.data, { filename: f.name, contentType: f.type ?? 'application/octet-stream' });
  return req;
}

async function listen(): Promise<string> {
  listening = http.createServer(t.app);
  await new Promise<void>((resolve) => listening!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(listening.address() as net.AddressInfo).port}`;
}

describe('STORAGE=s3 through the HTTP API', () => {
  beforeEach(async () => {
    t = await buildTestApp(s3Env(bucket, { S3_PREFIX: 'stowage/' }));
  });

  it('round-trips several files byte for byte, each an object under the prefix', async () => {
    const a = randomData(3 * MiB + 17);
    const b = Buffer.from('name,amount\nZoë,3\n');
    const res = await upload([
      { name: 'a.bin', data: a },
      { name: 'b.csv', data: b, type: 'text/csv' },
    ]);
    expect(res.status).toBe(201);
    const [fa, fb] = res.body.files;
    expect(fa).toMatchObject({ store: 's3', size: a.length, sha256: sha256(a), status: 'ready' });
    expect(fb).toMatchObject({ store: 's3', size: b.length, sha256: sha256(b), contentType: 'text/csv' });
    for (const [file, data] of [[fa, a], [fb, b]] as const) {
      const down = await t.http().get(file.links.content).buffer(true).parse(binary);
      expect(down.status).toBe(200);
      expect(sha256(down.body)).toBe(sha256(data));
      expect(down.headers['etag']).toBe(`"${sha256(data)}"`);
    }
    const keys = (await allRecords(t.db)).map((r) => `stowage/${r.key}`).sort();
    expect((await bucket.objectKeys()).sort()).toEqual(keys);
  });

  it('stores a 64 MiB upload as a multipart object and streams it back', async () => {
    const data = randomData(64 * MiB);
    const res = await upload([{ name: 'big.bin', data }]);
    expect(res.status).toBe(201);
    expect(res.body.files[0]).toMatchObject({ size: data.length, sha256: sha256(data), store: 's3' });
    const down = await t.http().get(res.body.files[0].links.content).buffer(true).parse(binary);
    expect(down.headers['content-length']).toBe(String(data.length));
    expect(sha256(down.body)).toBe(sha256(data));
    expect(await bucket.inProgressUploads()).toEqual([]);
  });

  it('answers ranges (absolute, open-ended, suffix) and conditional requests from the bucket', async () => {
    const data = randomData(200_000);
    const { body } = await upload([{ name: 'r.bin', data }]);
    const url = body.files[0].links.content;
    const cases: [string, number, number][] = [
      ['bytes=10-99', 10, 99],
      ['bytes=199000-', 199000, data.length - 1],
      ['bytes=-500', data.length - 500, data.length - 1],
      ['bytes=0-0', 0, 0],
    ];
    for (const [range, start, end] of cases) {
      const res = await t.http().get(url).set('Range', range).buffer(true).parse(binary);
      expect(res.status).toBe(206);
      expect(res.headers['content-range']).toBe(`bytes ${start}-${end}/${data.length}`);
      expect(res.body.equals(data.subarray(start, end + 1))).toBe(true);
    }
    const unsatisfiable = await t.http().get(url).set('Range', `bytes=${data.length}-`);
    expect(unsatisfiable.status).toBe(416);
    expect(unsatisfiable.body.error.code).toBe('range_not_satisfiable');
    const cached = await t.http().get(url).set('If-None-Match', `"${sha256(data)}"`);
    expect(cached.status).toBe(304);
  });

  it('a client that disconnects mid-upload leaves no object, no multipart upload and no record', async () => {
    const port = Number(new URL(await listen()).port);
    const token = await t.key('anonymous');
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    const boundary = 'b0undary';
    socket.write(
      `POST /v1/files HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\n` +
        `Content-Length: ${100 * MiB}\r\n\r\n--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="cut.bin"\r\n\r\n`,
    );
    socket.write(randomData(12 * MiB));
    await t.logs.waitFor((l) => l.msg === 'upload started');
    socket.destroy();
    await t.logs.waitFor((l) => l.msg === 'upload failed');
    expect(await allRecords(t.db)).toEqual([]);
    expect(await bucket.objectKeys()).toEqual([]);
    expect(await bucket.inProgressUploads()).toEqual([]);
  });

  it('reports ready with the bucket checked, and 503 once the bucket is gone, naming S3_BUCKET in the log only', async () => {
    const ready = await request(t.app).get('/readyz');
    expect(ready.status).toBe(200);
    await server.client().send(new DeleteBucketCommand({ Bucket: bucket.bucket }));
    // The background check, run now rather than at its next interval (test/server/readiness.test.ts times it).
    await t.resources.readiness.checkStore();
    const gone = await request(t.app).get('/readyz');
    expect(gone.status).toBe(503);
    expect(gone.body.error.code).toBe('not_ready');
    expect(gone.body.error.message).toBe('Not ready: store: unavailable. The log says why.');
    const logged = await t.logs.waitFor((l) => l.msg === 'not ready');
    expect(logged.store).toContain(`S3_BUCKET: bucket "${bucket.bucket}" does not exist`);
  });
});

describe('DOWNLOAD_MODE=redirect', () => {
  it('redirects to a presigned URL that a real client follows to the same bytes and headers', async () => {
    t = await buildTestApp(s3Env(bucket, { DOWNLOAD_MODE: 'redirect', PRESIGN_EXPIRES_S: '120' }));
    const data = randomData(1 * MiB + 5);
    const { body } = await upload([{ name: 'résumé 2026 €.pdf', data, type: 'application/pdf' }]);
    const base = await listen();
    const content = `${base}${body.files[0].links.content}`;
    // The key goes to stowage only: fetch drops Authorization when the redirect leaves its origin.
    const authorization = `Bearer ${await t.key('anonymous', 'read')}`;

    const redirect = await fetch(content, { redirect: 'manual', headers: { Authorization: authorization } });
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get('cache-control')).toBe('no-store');
    const location = redirect.headers.get('location')!;
    expect(location.startsWith(`${bucket.endpoint}/${bucket.bucket}/`)).toBe(true);
    expect(new URL(location).searchParams.get('X-Amz-Expires')).toBe('120');

    const followed = await fetch(content, { redirect: 'follow', headers: { Authorization: authorization } });
    expect(followed.status).toBe(200);
    // Each redirect is signed afresh (its date, so its signature, may differ by a second): same object, same answer overrides.
    const unsigned = (url: string) => {
      const u = new URL(url);
      for (const p of ['X-Amz-Date', 'X-Amz-Signature', 'X-Amz-Credential']) u.searchParams.delete(p);
      return u.toString();
    };
    expect(unsigned(followed.url)).toBe(unsigned(location));
    expect(sha256(Buffer.from(await followed.arrayBuffer()))).toBe(sha256(data));
    expect(followed.headers.get('content-type')).toBe('application/pdf');
    expect(followed.headers.get('content-disposition')).toBe(
      `attachment; filename="resume 2026 EUR.pdf"; filename*=UTF-8''r%C3%A9sum%C3%A9%202026%20%E2%82%AC.pdf`,
    );

    const ranged = await fetch(content, { redirect: 'follow', headers: { Authorization: authorization, Range: 'bytes=100-199' } });
    expect(ranged.status).toBe(206);
    expect(Buffer.from(await ranged.arrayBuffer()).equals(data.subarray(100, 200))).toBe(true);
  });

  it('answers file_missing instead of redirecting to an object that is gone', async () => {
    t = await buildTestApp(s3Env(bucket, { DOWNLOAD_MODE: 'redirect' }));
    const { body } = await upload([{ name: 'gone.txt', data: Buffer.from('bye') }]);
    const [record] = await allRecords(t.db);
    await t.store.delete(record.key);
    const res = await t.http().get(body.files[0].links.content);
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('file_missing');
    expect((await allRecords(t.db))[0].status).toBe('missing');
  });

  it('proxies from a store that cannot presign (volume)', async () => {
    t = await buildTestApp({ DOWNLOAD_MODE: 'redirect' });
    const data = randomData(10_000);
    const { body } = await upload([{ name: 'local.bin', data }]);
    const res = await t.http().get(body.files[0].links.content).buffer(true).parse(binary);
    expect(res.status).toBe(200);
    expect(res.headers['location']).toBeUndefined();
    expect(sha256(res.body)).toBe(sha256(data));
  });
});

describe('startup on STORAGE=s3', () => {
  it("refuses to start with the S3 store's own reason when the bucket is missing", async () => {
    const config = loadConfig(s3Env(bucket, { S3_BUCKET: 'no-such-bucket', DATABASE_PATH: ':memory:' }));
    const err = await openResources(config, new LogCapture().log).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toEqual([
      `S3_BUCKET: bucket "no-such-bucket" does not exist at ${bucket.endpoint} (create it, or set S3_BUCKET)`,
    ]);
  });
});
