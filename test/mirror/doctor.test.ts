import fsp from 'node:fs/promises';
import path from 'node:path';
import { applyRemedies } from '../../src/doctor/actions';
import type { DoctorDeps } from '../../src/doctor/context';
import { runChecks } from '../../src/doctor/doctor';
import { summaryLine } from '../../src/doctor/format';
import { doctorDeps } from '../../src/resources';
import { ConfigError } from '../../src/errors';
import type { Worker } from '../../src/tasks/worker';
import { allRecords, buildTestApp, type TestApp } from '../helpers/app';
import { startS3Server, type S3TestBucket, type S3TestServer } from '../helpers/s3server';
import { s3Env } from '../helpers/s3env';
import { randomData, sha256 } from '../helpers/streams';
import { makeTempDir } from '../helpers/tmp';
import { mirrorTaskOf, objectBytes, startWorker, taskReaches } from './helpers';

let server: S3TestServer;
let bucket: S3TestBucket;
let dir: string;
let t: TestApp | undefined;
let worker: Worker | undefined;

beforeAll(async () => {
  server = await startS3Server();
});
afterAll(() => server.close());
beforeEach(async () => {
  bucket = await server.newBucket();
  dir = await makeTempDir();
});
afterEach(async () => {
  await worker?.stop(0);
  worker = undefined;
  await t?.close();
  t = undefined;
  await fsp.rm(dir, { recursive: true, force: true });
});

it('reports a file lost from the volume but held by the mirror as restorable (not missing, and its copy not an orphan); --fix restores it', async () => {
  t = await buildTestApp(s3Env(bucket, { STORAGE: 'volume', STORAGE_MIRROR: 's3' }), dir);
  worker = startWorker(t);
  const data = randomData(64_000);
  const res = await t.http().post('/v1/files').attach('file', data, 'kept.bin');
  const id = res.body.files[0].id as string;
  await taskReaches(t, await mirrorTaskOf(t, id), 'succeeded');
  const [record] = await allRecords(t.db);
  const onVolume = path.join(dir, 'files', ...record.key.split('/'));
  await fsp.rm(onVolume);
  // As if a download had found it gone before the mirror was configured.
  await t.catalog.setStatus(id, 'missing', 'File missing from storage. Please re-upload it.');

  const deps: DoctorDeps = doctorDeps(t.resources, t.config, t.logs.log);
  const scope = { graceMs: 0, verify: false };
  const report = await runChecks(deps, scope);
  expect(report.problems).toEqual([
    expect.objectContaining({ kind: 'restorable', fileId: id, store: 'volume', key: record.key, status: 'missing' }),
  ]);
  expect(summaryLine(report)).toContain('missing: 0, restorable: 1');

  await applyRemedies(deps, scope, report, { fix: true, delete: false, pruneOrphans: false });
  expect(report.summary.restored).toBe(1);
  expect(summaryLine(report)).toContain('restored: 1');
  expect(sha256(await fsp.readFile(onVolume))).toBe(sha256(data));
  const download = await t.http().get(`/v1/files/${id}/content`);
  expect(download.status).toBe(200);
  expect(sha256(download.body as Buffer)).toBe(sha256(data));

  const again = await runChecks(deps, scope);
  expect(again.problems).toEqual([]);
});

it('reports ready files the mirror has no copy of (never queued, or given up) as unmirrored, not those still queued; --fix queues copies a worker makes', async () => {
  const upload = async (data: Buffer, name: string) => {
    const res = await t!.http().post('/v1/files').attach('file', data, name);
    expect(res.status).toBe(201);
    return (await allRecords(t!.db)).find((r) => r.id === res.body.files[0].id)!;
  };
  const onVolume = (key: string) => path.join(dir, 'files', ...key.split('/'));
  // Uploaded before STORAGE_MIRROR was set: no copy was ever queued.
  t = await buildTestApp({ STORAGE: 'volume' }, dir);
  const before = randomData(20_000);
  const early = await upload(before, 'before.bin');
  await t.close();

  t = await buildTestApp(s3Env(bucket, { STORAGE: 'volume', STORAGE_MIRROR: 's3' }), dir);
  // Its copy gave up: the bytes on disk were damaged when it ran, and repaired afterwards.
  const healed = randomData(30_000);
  const gaveUp = await upload(healed, 'healed.bin');
  await fsp.writeFile(onVolume(gaveUp.key), randomData(healed.length));
  worker = startWorker(t);
  await taskReaches(t, await mirrorTaskOf(t, gaveUp.id), 'failed');
  await worker.stop(0);
  worker = undefined;
  await fsp.writeFile(onVolume(gaveUp.key), healed);
  // Its copy is still queued: on its way, not unmirrored (but with no worker running, a stuck task).
  const queued = await upload(randomData(10_000), 'queued.bin');
  const queuedTask = await mirrorTaskOf(t, queued.id);

  const deps: DoctorDeps = doctorDeps(t.resources, t.config, t.logs.log);
  const scope = { graceMs: 0, verify: false };
  const report = await runChecks(deps, scope);
  expect(report.problems).toHaveLength(3);
  expect(report.problems).toEqual(
    expect.arrayContaining([
      expect.objectContaining({ kind: 'stuck_task', taskId: queuedTask.id, taskKind: 'mirror' }),
      expect.objectContaining({ kind: 'unmirrored', fileId: early.id, reason: expect.stringContaining('none was queued') }),
      expect.objectContaining({ kind: 'unmirrored', fileId: gaveUp.id, reason: expect.stringContaining('gave up (Copy not kept:') }),
    ]),
  );
  expect(summaryLine(report)).toContain('stuck tasks: 1, unmirrored: 2');

  await applyRemedies(deps, scope, report, { fix: true, delete: false, pruneOrphans: false });
  expect(summaryLine(report)).toContain('mirror copies queued: 2');
  worker = startWorker(t);
  for (const file of [early, gaveUp, queued]) await taskReaches(t, await mirrorTaskOf(t, file.id), 'succeeded');
  expect(sha256(await objectBytes(server, bucket.bucket, early.key))).toBe(sha256(before));
  expect(sha256(await objectBytes(server, bucket.bucket, gaveUp.key))).toBe(sha256(healed));
  expect((await allRecords(t.db)).every((r) => r.mirrored_at !== null)).toBe(true);
  expect((await runChecks(deps, scope)).problems).toEqual([]);
});

it('refuses to start when the mirror bucket does not exist, naming the variable to fix', async () => {
  const start = buildTestApp(s3Env(bucket, { STORAGE: 'volume', STORAGE_MIRROR: 's3', S3_BUCKET: 'no-such-bucket' }), dir);
  await expect(start).rejects.toThrow(ConfigError);
  await expect(start).rejects.toThrow(/^S3_BUCKET: bucket "no-such-bucket" does not exist .*\[the STORAGE_MIRROR=s3 store\]$/);
});
