import { execFile } from 'node:child_process';
import fsp from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { buildTestApp, type TestApp } from '../helpers/app';
import { makeTempDir } from '../helpers/tmp';

/**
 * `curl -OJ` saves a download under Content-Disposition's plain `filename=` (it does not read
 * `filename*`), so a Unicode name must arrive there as a readable ASCII spelling, not `?n?c?d?`.
 * And a download whose store sends fewer bytes than the record says fails in curl at once.
 */

const execFileAsync = promisify(execFile);
let t: TestApp;
let server: http.Server;
let base: string;
let dir: string;

beforeAll(async () => {
  t = await buildTestApp();
  server = http.createServer(t.app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  dir = await makeTempDir();
});
afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  await t?.close();
  if (dir) await fsp.rm(dir, { recursive: true, force: true });
});

it.each([
  ['Ünïcödé report (final).txt', 'Unicode report (final).txt'],
  ['Zoë Ødegård – Straße.csv', 'Zoe Odegard - Strasse.csv'],
  ['東京.xlsx', 'file.xlsx'],
])('curl -OJ saves %j as %j', async (name, saved) => {
  const data = Buffer.from(`bytes of ${name}\n`);
  const upload = await t.http().post('/v1/files').attach('file', data, { filename: name, contentType: 'application/octet-stream' });
  expect(upload.status).toBe(201);
  const into = await fsp.mkdtemp(path.join(dir, 'curl-'));
  const token = await t.key('anonymous', 'read');
  await execFileAsync('curl', ['-sS', '--fail', '-OJ', '-H', `Authorization: Bearer ${token}`, `${base}${upload.body.files[0].links.content}`], { cwd: into });
  expect(await fsp.readdir(into)).toEqual([saved]);
  expect(await fsp.readFile(path.join(into, saved))).toEqual(data);
});

it('a blob shorter than its record (cut on disk) fails the download at once: curl exits 18 (partial file), not 28 (waiting for the rest)', async () => {
  const data = Buffer.alloc(256 * 1024, 'x');
  const upload = await t.http().post('/v1/files').attach('file', data, { filename: 'cut.bin', contentType: 'application/octet-stream' });
  expect(upload.status).toBe(201);
  const { id } = upload.body.files[0];
  const record = await t.files.get('anonymous', id);
  await fsp.truncate(path.join(t.config.storage.path, ...record!.key.split('/')), 1000);

  const into = await fsp.mkdtemp(path.join(dir, 'curl-'));
  const token = await t.key('anonymous', 'read');
  const err = await execFileAsync('curl', ['-sS', '--max-time', '4', '-o', 'cut.bin', '-H', `Authorization: Bearer ${token}`, `${base}/v1/files/${id}/content`], { cwd: into }).then(
    () => undefined,
    (e: { code?: number; stderr?: string }) => e,
  );
  expect(err).toMatchObject({ code: 18, stderr: expect.stringMatching(/transfer closed with \d+ bytes remaining/) });
  expect((await fsp.stat(path.join(into, 'cut.bin'))).size).toBe(1000);
  expect(await t.logs.waitFor((l) => l.msg === 'download stream failed')).toMatchObject({ fileId: id });
});
