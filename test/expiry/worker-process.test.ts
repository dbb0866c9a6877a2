import fsp from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { bearer, createKeyWithCli, freePort, runService, type ServiceProcess } from '../helpers/service';
import { listFilesDeep, makeTempDir } from '../helpers/tmp';

let dir: string;
const running: ServiceProcess[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop()));
  await fsp.rm(dir, { recursive: true, force: true });
});

/** A built `serve` without workers and the environment for `stowage worker` processes beside it, on one volume and SQLite catalog. */
async function deployment(extra: Record<string, string> = {}) {
  dir = await makeTempDir('stowage-expiry-');
  const port = await freePort();
  const env = {
    HOME: dir,
    STORAGE: 'volume',
    STORAGE_PATH: path.join(dir, 'files'),
    DATABASE_PATH: path.join(dir, 'stowage.db'),
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    WORKERS: '0',
    ...extra,
  };
  const key = await createKeyWithCli(env, 'alice', 'write', { cwd: dir });
  const start = (command: 'serve' | 'worker') => {
    const svc = runService([command], { cwd: dir, env });
    running.push(svc);
    return svc;
  };
  const serve = start('serve');
  await serve.waitFor((l) => l.msg === 'listening');
  const url = `http://127.0.0.1:${port}`;
  const api = (p: string, init: RequestInit = {}) => fetch(`${url}${p}`, { ...init, headers: { ...bearer(key), ...(init.headers as Record<string, string>) } });
  const upload = async (names: string[], headers: Record<string, string> = {}) => {
    const form = new FormData();
    for (const name of names) form.append('file', new Blob([`the bytes of ${name}`]), name);
    const res = await api('/v1/files', { method: 'POST', body: form, headers });
    expect(res.status).toBe(201);
    return ((await res.json()) as { files: { id: string }[] }).files;
  };
  const blobs = async () => (await listFilesDeep(path.join(dir, 'files'))).filter((f) => !f.includes('/.'));
  return { env, api, upload, blobs, startWorker: () => start('worker') };
}

it('a `stowage worker` deletes files once their lifetime is up, tus uploads included, and keeps the rest', async () => {
  const d = await deployment({ SWEEP_INTERVAL: '1s' });
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const refused = await d.api('/v1/tus', {
    method: 'POST',
    headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '5', 'Upload-Metadata': `filename ${b64('t.txt')},expiresIn ${b64('forever')}` },
  });
  expect([refused.status, ((await refused.json()) as { error: { code: string } }).error.code]).toEqual([400, 'invalid_expires_in']);
  expect(((await (await d.api('/v1/files')).json()) as { files: unknown[] }).files).toEqual([]);
  const created = await d.api('/v1/tus', {
    method: 'POST',
    headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '5', 'Upload-Metadata': `filename ${b64('t.txt')},expiresIn ${b64('1s')}` },
  });
  expect(created.status).toBe(201);
  const location = new URL(created.headers.get('location')!, 'http://x').pathname;
  const patched = await d.api(location, {
    method: 'PATCH',
    headers: { 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
    body: 'hello',
  });
  expect(patched.status).toBe(204);
  const tusId = location.split('/').pop()!;
  const [short] = await d.upload(['short.txt'], { 'Stowage-Expires-In': '1s' });
  const [kept] = await d.upload(['kept.txt']);
  const tusFile = (await (await d.api(`/v1/files/${tusId}`)).json()) as { status: string; expiresAt: string; updatedAt: string };
  expect(tusFile.status).toBe('ready');
  expect(Date.parse(tusFile.expiresAt) - Date.parse(tusFile.updatedAt)).toBe(1000);
  expect(await d.blobs()).toHaveLength(3);

  const worker = d.startWorker();
  for (const id of [tusId, short.id]) await worker.waitFor((l) => l.event === 'file.expired' && l.fileId === id);
  for (const id of [tusId, short.id]) expect((await d.api(`/v1/files/${id}`)).status).toBe(404);
  expect((await d.api(`/v1/files/${kept.id}/content`)).status).toBe(200);
  expect(await d.blobs()).toHaveLength(1);
});

it('a worker killed (kill -9) in the middle of a sweep leaves expired records, which the next worker finishes', async () => {
  const d = await deployment();
  const ids: string[] = [];
  for (let i = 0; i < 20; i++) ids.push(...(await d.upload(Array.from({ length: 10 }, (_, j) => `f${i}-${j}.txt`))).map((f) => f.id));
  const [kept] = await d.upload(['kept.txt']);
  const db = new Database(d.env.DATABASE_PATH);
  try {
    db.prepare(`update files set delete_at = '2020-01-01T00:00:00.000Z' where id != ?`).run(kept.id);
    const first = d.startWorker();
    await first.waitFor((l) => l.event === 'file.expired');
    first.child.kill('SIGKILL');
    await first.exited;

    const left = db.prepare(`select id, key, status from files where id != ?`).all(kept.id) as { id: string; key: string; status: string }[];
    // Every file past its time was marked in one step; none half-removed is ready again.
    expect(left.every((r) => r.status === 'expired')).toBe(true);
    expect(left.length).toBeLessThan(ids.length);
    expect(left.length).toBeGreaterThan(0);
    // A record still there may have lost its blob (killed between the steps), never the reverse.
    expect((await d.blobs()).length).toBeLessThanOrEqual(left.length + 1);
    for (const r of left) expect((await d.api(`/v1/files/${r.id}/content`)).status).toBe(410);

    const second = d.startWorker();
    const sweep = await second.waitFor((l) => l.event === 'expiry.sweep');
    expect(sweep).toMatchObject({ expired: 0, removed: left.length, failed: 0 });
    expect(db.prepare(`select id from files`).all()).toEqual([{ id: kept.id }]);
    expect(await d.blobs()).toHaveLength(1);
  } finally {
    db.close();
  }
});
