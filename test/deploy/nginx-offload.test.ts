import { createHash, randomBytes } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { startNginx, type Nginx } from '../helpers/nginx';
import { bearer, type CliKey, type ServiceProcess } from '../helpers/service';
import { makeTempDir } from '../helpers/tmp';
import { OFFLOAD_ORIGIN, startOffloadingService } from '../helpers/offload';

/**
 * DOWNLOAD_OFFLOAD=nginx behind Debian's nginx running deploy/nginx/stowage.conf (only its
 * address, upstream and directory changed): the built `serve` checks the API key and sets the
 * headers, nginx sends the bytes and the ranges from the volume.
 */

let dir: string;
let port: number;
let filesDir: string;
let stowageUrl: string;
let svc: ServiceProcess;
let nginx: Nginx;
let alice: CliKey;
let bob: CliKey;
const data = randomBytes(3 * 1024 ** 2 + 17);
let file: { id: string; sha256: string; links: { content: string } };

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

async function upload(key: CliKey, body: Buffer, name: string, fields: Record<string, string> = {}): Promise<Response> {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  form.append('file', new Blob([body]), name);
  return fetch(`${nginx.url}/v1/files`, { method: 'POST', headers: bearer(key), body: form });
}

/** Headers as a plain object, without those of the hop (which differ between any two answers). */
function endToEnd(res: Response): Record<string, string> {
  const hop = ['date', 'connection', 'keep-alive', 'server', 'content-length', 'transfer-encoding', 'x-request-id'];
  return Object.fromEntries([...res.headers].filter(([name]) => !hop.includes(name)));
}

beforeAll(async () => {
  dir = await makeTempDir();
  // nginx's workers run as another user (nobody, as root): they reach the files through here.
  await fsp.chmod(dir, 0o755);
  ({ svc, url: stowageUrl, port, filesDir, alice, bob } = await startOffloadingService(dir, 'nginx'));
  nginx = await startNginx({ dir: path.join(dir, 'nginx'), upstreamPort: port, filesDir });
  const res = await upload(alice, data, 'data.bin');
  expect(res.status).toBe(201);
  file = ((await res.json()) as { files: (typeof file)[] }).files[0];
});

afterAll(async () => {
  await nginx?.stop();
  await svc?.stop();
  if (dir) await fsp.rm(dir, { recursive: true, force: true });
});

it('sends the file through nginx byte for byte, with every header stowage sets (stowage itself sends none of the bytes)', async () => {
  expect(file.sha256).toBe(sha256(data));
  const headers = { ...bearer(alice), Origin: OFFLOAD_ORIGIN };
  const res = await fetch(`${nginx.url}${file.links.content}`, { headers });
  expect(res.status).toBe(200);
  const body = Buffer.from(await res.arrayBuffer());
  expect(body.length).toBe(data.length);
  expect(sha256(body)).toBe(file.sha256);
  expect(res.headers.get('content-length')).toBe(String(data.length));
  expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);

  // Straight from stowage (as nginx gets it): the same headers, the redirect, and no body.
  const upstream = await fetch(`${stowageUrl}${file.links.content}`, { headers });
  expect(upstream.status).toBe(200);
  expect(await upstream.text()).toBe('');
  expect(upstream.headers.get('x-accel-redirect')).toBe(`/_stowage_files/${file.id.slice(0, 2)}/${file.id}`);
  const { 'x-accel-redirect': _redirect, ...expected } = endToEnd(upstream);
  // Accept-Ranges is left to nginx, which adds its own.
  expect(endToEnd(res)).toEqual({ ...expected, 'accept-ranges': 'bytes' });
  expect(endToEnd(res)).toMatchObject({
    etag: `"${file.sha256}"`,
    'content-type': 'application/octet-stream',
    'content-disposition': 'attachment; filename=data.bin',
    'cache-control': 'private, no-cache',
    'content-security-policy': 'sandbox',
    'x-content-type-options': 'nosniff',
    'access-control-allow-origin': OFFLOAD_ORIGIN,
    'accept-ranges': 'bytes',
  });

  // A HEAD is answered by stowage itself.
  const head = await fetch(`${nginx.url}${file.links.content}`, { method: 'HEAD', headers });
  expect([head.status, head.headers.get('content-length'), head.headers.get('etag')]).toEqual([200, String(data.length), `"${file.sha256}"`]);
});

it('sends a download link\'s file the same way, without credentials, with the link\'s headers too', async () => {
  const made = await fetch(`${nginx.url}/v1/files/${file.id}/links`, {
    method: 'POST',
    headers: { ...bearer(alice), 'Content-Type': 'application/json' },
    body: JSON.stringify({ expiresIn: '1h' }),
  });
  expect(made.status).toBe(201);
  const link = new URL(((await made.json()) as { url: string }).url).pathname;
  const res = await fetch(`${nginx.url}${link}`);
  expect(res.status).toBe(200);
  expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(file.sha256);
  const upstream = await fetch(`${stowageUrl}${link}`);
  expect(upstream.headers.get('x-accel-redirect')).toMatch(/^\/_stowage_files\//);
  const { 'x-accel-redirect': _redirect, ...expected } = endToEnd(upstream);
  expect(endToEnd(res)).toEqual({ ...expected, 'accept-ranges': 'bytes' });
  expect(expected).toMatchObject({ 'x-robots-tag': expect.stringContaining('noindex'), 'referrer-policy': 'no-referrer' });
});

it('serves ranges from nginx (206 with the right bytes), If-Range by stowage\'s ETag, and answers 304 and 416 as stowage', async () => {
  const get = (headers: Record<string, string>) => fetch(`${nginx.url}${file.links.content}`, { headers: { ...bearer(alice), ...headers } });
  const part = await get({ Range: 'bytes=1000000-1999999' });
  expect(part.status).toBe(206);
  expect(part.headers.get('content-range')).toBe(`bytes 1000000-1999999/${data.length}`);
  expect(Buffer.from(await part.arrayBuffer()).equals(data.subarray(1000000, 2000000))).toBe(true);

  const tail = await get({ Range: 'bytes=-500' });
  expect(tail.status).toBe(206);
  expect(Buffer.from(await tail.arrayBuffer()).equals(data.subarray(data.length - 500))).toBe(true);

  // Several ranges: nginx's multipart answer (stowage alone sends the whole file).
  const several = await get({ Range: 'bytes=0-9,20-29' });
  expect([several.status, several.headers.get('content-type')]).toEqual([206, expect.stringMatching(/^multipart\/byteranges; boundary=/)]);

  const matching = await get({ Range: 'bytes=0-9', 'If-Range': `"${file.sha256}"` });
  expect([matching.status, (await matching.arrayBuffer()).byteLength]).toEqual([206, 10]);
  const stale = await get({ Range: 'bytes=0-9', 'If-Range': '"another-version"' });
  expect([stale.status, (await stale.arrayBuffer()).byteLength]).toEqual([200, data.length]);

  // fetch adds Cache-Control: no-cache to a conditional request unless it has one; a browser's revalidation sends max-age=0.
  const notModified = await get({ 'If-None-Match': `"${file.sha256}"`, 'Cache-Control': 'max-age=0' });
  expect(notModified.status).toBe(304);

  const beyond = await get({ Range: `bytes=${data.length}-` });
  expect(beyond.status).toBe(416);
  expect(beyond.headers.get('content-range')).toBe(`bytes */${data.length}`);
  expect(((await beyond.json()) as { error: { code: string } }).error.code).toBe('range_not_satisfiable');
});

it('leaves the checks to stowage: no credentials 401, another owner 404, an expired file 410, a vanished blob file_missing', async () => {
  const anonymous = await fetch(`${nginx.url}${file.links.content}`);
  expect(anonymous.status).toBe(401);
  expect(((await anonymous.json()) as { error: { code: string; requestId: string } }).error).toMatchObject({ code: 'unauthenticated' });

  const others = await fetch(`${nginx.url}${file.links.content}`, { headers: bearer(bob) });
  expect([others.status, ((await others.json()) as { error: { code: string } }).error.code]).toEqual([404, 'not_found']);

  const short = await upload(alice, randomBytes(5000), 'short.bin', { expiresIn: '1s' });
  expect(short.status).toBe(201);
  const shortFile = ((await short.json()) as { files: { links: { content: string }; expiresAt: string }[] }).files[0];
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, Date.parse(shortFile.expiresAt) - Date.now() + 5)));
  const expired = await fetch(`${nginx.url}${shortFile.links.content}`, { headers: bearer(alice) });
  expect([expired.status, ((await expired.json()) as { error: { code: string } }).error.code]).toEqual([410, 'file_expired']);

  const doomed = await upload(alice, randomBytes(5000), 'doomed.bin');
  const doomedFile = ((await doomed.json()) as { files: { id: string; links: { content: string } }[] }).files[0];
  await fsp.rm(path.join(filesDir, doomedFile.id.slice(0, 2), doomedFile.id));
  const vanished = await fetch(`${nginx.url}${doomedFile.links.content}`, { headers: bearer(alice) });
  expect([vanished.status, ((await vanished.json()) as { error: { code: string } }).error.code]).toEqual([404, 'file_missing']);
});

it('keeps the internal location unreachable from outside: 404, with or without credentials', async () => {
  const internal = `${nginx.url}/_stowage_files/${file.id.slice(0, 2)}/${file.id}`;
  for (const headers of [{}, bearer(alice)]) {
    const res = await fetch(internal, { headers });
    expect(res.status).toBe(404);
    expect((await res.arrayBuffer()).byteLength).toBeLessThan(1000);
  }
});
