import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildTestApp, type TestApp } from '../helpers/app';
import { startS3Server, type S3TestServer } from '../helpers/s3server';
import { s3Env } from '../helpers/s3env';
import { randomData, sha256 } from '../helpers/streams';

let server: S3TestServer;
let t: TestApp;
let listening: http.Server;
let base: string;
beforeAll(async () => {
  server = await startS3Server();
});
afterAll(() => server.close());
beforeEach(async () => {
  const bucket = await server.newBucket();
  t = await buildTestApp(s3Env(bucket, { DOWNLOAD_MODE: 'redirect', PRESIGN_EXPIRES_S: '300' }));
  listening = http.createServer(t.app);
  await new Promise<void>((resolve) => listening.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(listening.address() as AddressInfo).port}`;
});
afterEach(async () => {
  listening.closeAllConnections();
  await new Promise((resolve) => listening.close(resolve));
  await t.close();
});

async function call(path: string, init: RequestInit = {}) {
  const token = await t.key('alice');
  return fetch(`${base}${path}`, { ...init, headers: { Authorization: `Bearer ${token}`, ...init.headers } });
}

/** When a presigned (SigV4) URL stops working, in ms since the epoch. */
function presignedExpiry(location: string): number {
  const params = new URL(location).searchParams;
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(params.get('X-Amz-Date')!)!;
  return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) + Number(params.get('X-Amz-Expires')) * 1000;
}

describe('download links with DOWNLOAD_MODE=redirect on S3', () => {
  it('redirect to a presigned URL that expires no later than the link, and that serves the bytes', async () => {
    const data = randomData(300_000);
    const form = new FormData();
    form.append('file', new Blob([data], { type: 'application/pdf' }), 'paper.pdf');
    const uploaded = (await (await call('/v1/files', { method: 'POST', body: form })).json()) as { files: { id: string }[] };
    const id = uploaded.files[0]!.id;

    const makeLink = async (body: object) => {
      const res = await call(`/v1/files/${id}/links`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
      expect(res.status).toBe(201);
      return (await res.json()) as { url: string; expiresAt: string };
    };

    // A link shorter than PRESIGN_EXPIRES_S: the presigned URL is cut to the link's expiry.
    const short = await makeLink({ expiresIn: '60s', disposition: 'inline' });
    const redirect = await fetch(short.url, { redirect: 'manual' });
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get('cache-control')).toBe('no-store');
    const location = redirect.headers.get('location')!;
    expect(Number(new URL(location).searchParams.get('X-Amz-Expires'))).toBeLessThanOrEqual(60);
    expect(presignedExpiry(location)).toBeLessThanOrEqual(Date.parse(short.expiresAt));
    expect(new URL(location).searchParams.get('response-content-disposition')).toBe('inline; filename=paper.pdf');

    const followed = await fetch(short.url);
    expect(followed.status).toBe(200);
    expect(sha256(Buffer.from(await followed.arrayBuffer()))).toBe(sha256(data));
    const ranged = await fetch(short.url, { headers: { Range: 'bytes=1000-1999' } });
    expect(ranged.status).toBe(206);
    expect(Buffer.from(await ranged.arrayBuffer()).equals(data.subarray(1000, 2000))).toBe(true);

    // A longer link: PRESIGN_EXPIRES_S applies.
    const long = await makeLink({ expiresIn: '1h' });
    const longRedirect = await fetch(long.url, { redirect: 'manual' });
    expect(new URL(longRedirect.headers.get('location')!).searchParams.get('X-Amz-Expires')).toBe('300');
    expect(new URL(longRedirect.headers.get('location')!).searchParams.get('response-content-disposition')).toBe('attachment; filename=paper.pdf');
  });
});
