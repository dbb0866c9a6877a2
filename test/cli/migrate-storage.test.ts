import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { allRecords, buildTestApp, type TestApp } from '../helpers/app';
import { startS3Server, type S3TestBucket, type S3TestServer } from '../helpers/s3server';
import { s3Env } from '../helpers/s3env';
import { runService, type ServiceProcess } from '../helpers/service';
import { binary, randomData, sha256 } from '../helpers/streams';
import { makeTempDir } from '../helpers/tmp';

const FILES = 8;

let server: S3TestServer;
let bucket: S3TestBucket;
let dir: string;
let originals: Map<string, Buffer>;
const apps: TestApp[] = [];
beforeAll(async () => {
  server = await startS3Server();
});
afterAll(() => server.close());

/** A volume with FILES uploaded through the API, as a deployment has before it migrates. */
beforeEach(async () => {
  bucket = await server.newBucket();
  dir = await makeTempDir();
  const t = await buildTestApp({}, dir);
  originals = new Map();
  for (let i = 0; i < FILES; i++) {
    const data = randomData(100_000 + i * 70_000);
    const res = await t.http().post('/v1/files').attach('file', data, `file-${i}.bin`);
    originals.set(res.body.files[0].id, data);
  }
  await t.close();
});
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
  await fsp.rm(dir, { recursive: true, force: true });
});

/** The app on the same catalog and volume, with the bucket configured (STORAGE=s3 by default). */
async function appOnDir(storage = 's3'): Promise<TestApp> {
  const t = await buildTestApp(s3Env(bucket, { STORAGE: storage }), dir);
  apps.push(t);
  return t;
}

function migrate(...args: string[]): ServiceProcess {
  return runService(['migrate-storage', '--to', 's3', ...args], {
    cwd: dir,
    env: { ...s3Env(bucket), STORAGE: 'volume', STORAGE_PATH: path.join(dir, 'files'), LOG_LEVEL: 'info' },
  });
}

async function finish(svc: ServiceProcess): Promise<{ code: number | null; summary: string }> {
  const code = await svc.exited;
  const summary = svc.lines.map((l) => l.msg).find((m) => m.startsWith('migrate-storage')) ?? svc.stderr.join('\n');
  return { code, summary };
}

function total(): number {
  return [...originals.values()].reduce((n, d) => n + d.length, 0);
}

async function volumeBlobs(): Promise<string[]> {
  const entries = await fsp.readdir(path.join(dir, 'files'), { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile() && !e.parentPath.includes('.tmp')).map((e) => e.name);
}

async function expectAllDownloadable(storage: string) {
  const t = await appOnDir(storage);
  for (const [id, data] of originals) {
    const res = await t.http().get(`/v1/files/${id}/content`).buffer(true).parse(binary);
    expect(res.status).toBe(200);
    expect(sha256(res.body)).toBe(sha256(data));
  }
}

it('--dry-run counts what would move and changes nothing', async () => {
  const { code, summary } = await finish(migrate('--dry-run'));
  expect(code).toBe(0);
  expect(summary).toBe(
    `migrate-storage (dry run, nothing changed; would have): copied ${FILES}, skipped 0, failed 0, bytes ${total()} -> s3://${bucket.bucket}/ at ${bucket.endpoint}`,
  );
  expect(await bucket.objectKeys()).toEqual([]);
  const t = await appOnDir('volume');
  expect((await allRecords(t.db)).every((r) => r.store === 'volume')).toBe(true);
});

it('resumes after being killed halfway: the re-run copies the rest, skips what was switched, and every file reads back', async () => {
  const first = migrate('--concurrency', '1');
  await first.waitFor(() => first.lines.filter((l) => l.msg === 'blob migrated').length >= 3);
  first.child.kill('SIGKILL');
  expect(await first.exited).toBeNull();

  const t = await appOnDir('volume');
  const switched = (await allRecords(t.db)).filter((r) => r.store === 's3');
  expect(switched.length).toBeGreaterThanOrEqual(3);
  expect(switched.length).toBeLessThan(FILES);
  expect(await volumeBlobs()).toHaveLength(FILES);
  // Mid-migration, a server on the volume serves files from both stores.
  await expectAllDownloadable('volume');

  const second = await finish(migrate('--concurrency', '3'));
  expect(second.code).toBe(0);
  const switchedBytes = switched.reduce((n, r) => n + Number(r.size), 0);
  expect(second.summary).toBe(
    `migrate-storage: copied ${FILES - switched.length}, skipped ${switched.length}, failed 0, bytes ${total() - switchedBytes} -> s3://${bucket.bucket}/ at ${bucket.endpoint}`,
  );
  expect((await allRecords(t.db)).every((r) => r.store === 's3')).toBe(true);
  expect((await bucket.objectKeys()).sort()).toEqual((await allRecords(t.db)).map((r) => r.key).sort());
  expect(await bucket.inProgressUploads()).toEqual([]);
  await expectAllDownloadable('s3');

  const third = await finish(migrate());
  expect(third.summary).toMatch(new RegExp(`^migrate-storage: copied 0, skipped ${FILES}, failed 0, bytes 0 `));
});

it('--delete-source removes each volume blob once its copy is verified', async () => {
  const { code, summary } = await finish(migrate('--delete-source'));
  expect(code).toBe(0);
  expect(summary).toMatch(new RegExp(`^migrate-storage: copied ${FILES}, skipped 0, failed 0, bytes ${total()} `));
  expect(await volumeBlobs()).toEqual([]);
  await expectAllDownloadable('s3');
});

it('leaves a record whose blob fails verification on the volume, with no object for it, and exits 1', async () => {
  const t = await appOnDir('volume');
  const [victim] = await allRecords(t.db);
  const file = path.join(dir, 'files', ...victim.key.split('/'));
  // Same size, different bytes: bit rot the digest catches.
  await fsp.writeFile(file, randomData(Number(victim.size)));

  const { code, summary } = await finish(migrate('--delete-source'));
  expect(code).toBe(1);
  expect(summary).toMatch(new RegExp(`^migrate-storage: copied ${FILES - 1}, skipped 0, failed 1, `));
  const records = await allRecords(t.db);
  expect(records.find((r) => r.id === victim.id)?.store).toBe('volume');
  expect(records.filter((r) => r.store === 's3')).toHaveLength(FILES - 1);
  expect(await bucket.objectKeys()).not.toContain(victim.key);
  expect(fs.existsSync(file)).toBe(true);
});

it('refuses to start, naming the variable, when the target bucket does not exist', async () => {
  const svc = runService(['migrate-storage', '--to', 's3'], {
    cwd: dir,
    env: { ...s3Env(bucket, { S3_BUCKET: 'missing-bucket' }), STORAGE: 'volume', STORAGE_PATH: path.join(dir, 'files') },
  });
  expect(await svc.exited).toBe(1);
  expect(svc.stderr.join('\n')).toContain(`S3_BUCKET: bucket "missing-bucket" does not exist at ${bucket.endpoint}`);
});
