import { execFile } from 'node:child_process';
import fsp from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import { type PostgresServer, startPostgres } from '../helpers/postgres';
import { bearer, createKeyWithCli, freePort, ROOT, runService, type ServiceProcess } from '../helpers/service';
import { listFilesDeep, makeTempDir } from '../helpers/tmp';
import { randomData } from '../helpers/streams';
import { form } from '../helpers/multipart';

/** Quotas and usage through the built server and CLI: tus creations, two instances on one PostgreSQL, `stowage usage --verify`. */

const execFileAsync = promisify(execFile);
let base: string;
let postgres: PostgresServer | undefined;
const running: ServiceProcess[] = [];

beforeAll(async () => {
  base = await makeTempDir('stowage-quotas-');
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop()));
});
afterAll(async () => {
  await postgres?.stop();
  await fsp.rm(base, { recursive: true, force: true });
});

/** The built CLI with `args`: its exit code and output. */
async function cli(args: string[], env: Record<string, string>, cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [path.join(ROOT, 'dist/src/cli/index.js'), ...args], { cwd, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** A deployment's shared environment (a volume in its own directory), and a `serve` of it. */
async function deployment(name: string, extra: Record<string, string> = {}) {
  const dir = path.join(base, name);
  await fsp.mkdir(dir, { recursive: true });
  const env = { HOME: dir, STORAGE: 'volume', STORAGE_PATH: path.join(dir, 'files'), HOST: '127.0.0.1', LOG_LEVEL: 'info', UPLOADS_PER_CLIENT: '64', ...extra };
  const alice = await createKeyWithCli(env, 'alice', 'write', { cwd: dir });
  const start = async () => {
    const port = await freePort();
    const svc = runService(['serve'], { cwd: dir, env: { ...env, PORT: String(port) } });
    running.push(svc);
    await svc.waitFor((l) => l.msg === 'listening');
    return { svc, url: `http://127.0.0.1:${port}` };
  };
  return { dir, env, auth: bearer(alice), start, serve: async () => (await start()).url };
}

async function upload(url: string, auth: { Authorization: string }, files: { name: string; data: Buffer }[]) {
  const { body, type } = form(files);
  const res = await fetch(`${url}/v1/files`, { method: 'POST', headers: { ...auth, 'Content-Type': type }, body });
  return { status: res.status, body: (await res.json()) as any };
}

it('refuses a resumable (tus) upload at creation when its Upload-Length does not fit, and frees its room when it is terminated', async () => {
  const d = await deployment('tus', { QUOTA_BYTES: '10000' });
  const url = await d.serve();
  const create = (length: number) =>
    fetch(`${url}/v1/tus`, {
      method: 'POST',
      headers: { ...d.auth, 'Tus-Resumable': '1.0.0', 'Upload-Length': String(length), 'Upload-Metadata': `filename ${Buffer.from('x.bin').toString('base64')}` },
    });
  const refused = await create(20_000);
  expect(refused.status).toBe(413);
  expect(((await refused.json()) as any).error).toMatchObject({ code: 'quota_exceeded' });
  const created = await create(8000);
  expect(created.status).toBe(201);
  // The unfinished upload holds its size: another does not fit beside it.
  expect((await create(8000)).status).toBe(413);
  expect(((await (await fetch(`${url}/v1/usage`, { headers: d.auth })).json()) as any).reserved).toEqual({ bytes: 8000, files: 1 });
  const terminated = await fetch(`${url}${new URL(created.headers.get('location')!, url).pathname}`, { method: 'DELETE', headers: { ...d.auth, 'Tus-Resumable': '1.0.0' } });
  expect(terminated.status).toBe(204);
  // The record (and its reservation) goes just after the tus server's answer.
  const usage = async () => ((await (await fetch(`${url}/v1/usage`, { headers: d.auth })).json()) as any);
  while ((await usage()).reserved.files > 0) await new Promise((r) => setImmediate(r));
  const again = await create(8000);
  expect(again.status).toBe(201);
  // Bytes sent to it are kept: it becomes a file like any, within the quota.
  const data = randomData(8000);
  const patched = await fetch(`${url}${new URL(again.headers.get('location')!, url).pathname}`, {
    method: 'PATCH',
    headers: { ...d.auth, 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
    body: data,
  });
  expect(patched.status).toBe(204);
  expect(((await (await fetch(`${url}/v1/usage`, { headers: d.auth })).json()) as any)).toMatchObject({ bytes: 8000, files: 1, reserved: { bytes: 0, files: 0 } });
});

it("a process killed mid-upload leaves no reservation behind: the next one's sweep removes its pending record, and the room is back", async () => {
  const d = await deployment('crash', { QUOTA_BYTES: '100000', LOG_LEVEL: 'debug' });
  const first = await d.start();
  const { body, type } = form([{ name: 'big.bin', data: randomData(80_000) }]);
  // The whole length announced, half of it sent: the upload stays in progress.
  const req = http.request(`${first.url}/v1/files`, { method: 'POST', headers: { ...d.auth, 'Content-Type': type, 'Content-Length': String(body.length) } });
  req.on('error', () => undefined);
  req.write(body.subarray(0, 40_000));
  await first.svc.waitFor((l) => l.msg === 'upload started');
  const usage = async (url: string) => ((await (await fetch(`${url}/v1/usage`, { headers: d.auth })).json()) as any);
  expect((await usage(first.url)).reserved).toEqual({ bytes: body.length, files: 1 });
  first.svc.child.kill('SIGKILL');
  await first.svc.exited;

  const second = await d.start();
  await second.svc.waitFor((l) => l.msg === 'leftover sweep');
  expect(await usage(second.url)).toMatchObject({ bytes: 0, files: 0, reserved: { bytes: 0, files: 0 } });
  expect((await upload(second.url, d.auth, [{ name: 'big.bin', data: randomData(80_000) }])).status).toBe(201);
});

it('lets exactly 10 of 20 concurrent uploads through two instances on one PostgreSQL, with a quota for 10', async () => {
  postgres ??= await startPostgres();
  const size = 10_000;
  const d = await deployment('pg', { DATABASE_URL: await postgres.createDatabase(), QUOTA_BYTES: String(10 * size + 5000) });
  const urls = await Promise.all([d.serve(), d.serve()]);
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => upload(urls[i % 2], d.auth, [{ name: `f${i}.bin`, data: randomData(size) }])));
  expect(results.filter((r) => r.status === 201)).toHaveLength(10);
  expect(results.filter((r) => r.status === 413 && r.body.error.code === 'quota_exceeded')).toHaveLength(10);
  // Every instance sees the same ten.
  const listed = ((await (await fetch(`${urls[1]}/v1/files?limit=100`, { headers: d.auth })).json()) as any).files;
  expect(listed).toHaveLength(10);
  const blobs = (await listFilesDeep(path.join(d.dir, 'files'))).filter((f) => !f.startsWith('.'));
  expect(blobs).toHaveLength(10);
  const usage = (await (await fetch(`${urls[0]}/v1/usage`, { headers: d.auth })).json()) as any;
  expect(usage).toMatchObject({ bytes: 10 * size, files: 10, reserved: { bytes: 0, files: 0 } });
});

it('stowage quotas sets limits per owner, and stowage usage --verify finds what the stores hold differently from the catalog', async () => {
  const d = await deployment('verify', { QUOTA_FILES: '100' });
  const set = await cli(['quotas', 'set', 'alice', '--bytes', '1mb', '--files', '5'], d.env, d.dir);
  expect(set).toMatchObject({ code: 0, stdout: 'alice: 1048576 bytes, 5 files\n' });
  expect((await cli(['quotas', 'set', 'no body'], d.env, d.dir)).code).not.toBe(0);
  const listed = JSON.parse((await cli(['quotas', 'list', '--json'], d.env, d.dir)).stdout);
  expect(listed).toMatchObject({ defaults: { maxBytes: null, maxFiles: 100 }, owners: [{ owner: 'alice', maxBytes: 1048576, maxFiles: 5 }] });

  const url = await d.serve();
  const sizes = [1000, 2000, 3000];
  const stored = await upload(url, d.auth, sizes.map((n, i) => ({ name: `f${i}`, data: randomData(n) })));
  expect(stored.status).toBe(201);
  await Promise.all(running.splice(0).map((s) => s.stop()));

  const clean = await cli(['usage', '--verify', '--json'], d.env, d.dir);
  expect(clean.code).toBe(0);
  const figures = JSON.parse(clean.stdout);
  expect(figures).toEqual({
    owners: [{ owner: 'alice', bytes: 6000, files: 3, reserved: { bytes: 0, files: 0 }, quota: { bytes: 1048576, files: 5 }, stores: { volume: { bytes: 6000, files: 3 } } }],
    differences: [],
  });
  expect((await cli(['usage'], d.env, d.dir)).stdout).toContain('alice: 3 files, 6000 bytes; quota 1048576 bytes, 5 files');

  // Behind stowage's back: one blob truncated, one removed, and bytes no record claims.
  const [truncated, removed] = stored.body.files.slice(0, 2) as { id: string }[];
  const blobPath = async (id: string) => path.join(d.dir, 'files', (await listFilesDeep(path.join(d.dir, 'files'))).find((f) => f.includes(id))!);
  await fsp.truncate(await blobPath(truncated.id), 10);
  await fsp.rm(await blobPath(removed.id));
  const stray = path.join(d.dir, 'files', 'stray.bin');
  await fsp.writeFile(stray, randomData(777));
  const old = new Date(Date.now() - 3600_000);
  await fsp.utimes(stray, old, old);

  const found = await cli(['usage', '--verify', '--json'], d.env, d.dir);
  expect(found.code).toBe(1);
  const { differences } = JSON.parse(found.stdout);
  expect(differences).toEqual(
    expect.arrayContaining([
      expect.objectContaining({ kind: 'size_mismatch', owner: 'alice', id: truncated.id, catalogBytes: 1000, storeBytes: 10 }),
      expect.objectContaining({ kind: 'missing_blob', owner: 'alice', id: removed.id, catalogBytes: 2000 }),
      expect.objectContaining({ kind: 'unclaimed_blob', store: 'volume', key: 'stray.bin', storeBytes: 777 }),
    ]),
  );
  expect(differences).toHaveLength(3);
  const text = await cli(['usage', '--verify'], d.env, d.dir);
  expect(text.code).toBe(1);
  expect(text.stdout).toContain('3 differences');

  expect((await cli(['quotas', 'remove', 'alice'], d.env, d.dir)).stdout).toBe('alice: back to the defaults\n');
  expect((await cli(['quotas', 'remove', 'alice'], d.env, d.dir)).code).toBe(1);
});
