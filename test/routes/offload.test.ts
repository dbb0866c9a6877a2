import fsp from 'node:fs/promises';
import path from 'node:path';
import { buildTestApp, type TestApp } from '../helpers/app';
import { binary, randomData, sha256 } from '../helpers/streams';

/**
 * DOWNLOAD_OFFLOAD=sendfile (Caddy, Apache's mod_xsendfile): the answer names the file on the
 * volume and carries no body; a file in a store the proxy can't read streams as usual. (With the
 * real proxies in front: test/deploy/caddy-offload.test.ts, nginx-offload.test.ts.)
 */

let t: TestApp;
afterEach(() => t?.close());

it('answers a download of a volume file with X-Sendfile naming the file, its headers and no body', async () => {
  t = await buildTestApp({ DOWNLOAD_OFFLOAD: 'sendfile' });
  const data = randomData(100_000);
  const uploaded = (await t.http('alice').post('/v1/files').attach('file', data, 'report.pdf')).body.files[0];

  const res = await t.http('alice').get(uploaded.links.content).buffer(true).parse(binary);
  expect(res.status).toBe(200);
  expect((res.body as Buffer).length).toBe(0);
  const file = res.headers['x-sendfile'] as string;
  expect(path.isAbsolute(file) && file.startsWith(`${t.config.storage.path}/`)).toBe(true);
  expect(sha256(await fsp.readFile(file))).toBe(sha256(data));
  expect(res.headers).toMatchObject({
    etag: `"${uploaded.sha256}"`,
    'content-type': 'application/pdf',
    'content-disposition': 'attachment; filename=report.pdf',
    'cache-control': 'private, no-cache',
    'content-security-policy': 'sandbox',
  });
  // The proxy answers ranges and says so; stowage still answers what it can without the bytes.
  expect(res.headers['accept-ranges']).toBeUndefined();
  expect((await t.http('alice').get(uploaded.links.content).set('If-None-Match', `"${uploaded.sha256}"`)).status).toBe(304);
  expect((await t.http('alice').get(uploaded.links.content).set('Range', 'bytes=100000-')).status).toBe(416);
  expect((await t.http('bob').get(uploaded.links.content)).status).toBe(404);
  const head = await t.http('alice').head(uploaded.links.content);
  expect([head.status, head.headers['content-length'], head.headers['x-sendfile']]).toEqual([200, '100000', undefined]);
});

it.each(['memory', 'tmp'])('streams a file of the %s store itself (the proxy has no path to it)', async (driver) => {
  t = await buildTestApp({ STORAGE: driver, DOWNLOAD_OFFLOAD: 'sendfile' });
  const data = randomData(20_000);
  const uploaded = (await t.http('alice').post('/v1/files').attach('file', data, 'a.bin')).body.files[0];
  const res = await t.http('alice').get(uploaded.links.content).buffer(true).parse(binary);
  expect([res.status, res.headers['x-sendfile'], sha256(res.body as Buffer)]).toEqual([200, undefined, sha256(data)]);
});
