import fsp from 'node:fs/promises';
import path from 'node:path';
import request from 'supertest';
import { applyRemedies } from '../../src/doctor/actions';
import type { DoctorDeps } from '../../src/doctor/context';
import { runChecks } from '../../src/doctor/doctor';
import { summaryLine } from '../../src/doctor/format';
import { storeMap } from '../../src/doctor/stores';
import { ConfigError } from '../../src/errors';
import type { Worker } from '../../src/tasks/worker';
import { allRecords, buildTestApp, type TestApp } from '../helpers/app';
import { startS3Server, type S3TestBucket, type S3TestServer } from '../helpers/s3server';
import { s3Env } from '../helpers/s3env';
import { randomData, sha256 } from '../helpers/streams';
import { makeTempDir } from '../helpers/tmp';
import { mirrorTaskOf, startWorker, taskReaches } from './helpers';

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
  const res = await request(t.app).post('/v1/files').attach('file', data, 'kept.bin');
  const id = res.body.files[0].id as string;
  await taskReaches(t, await mirrorTaskOf(t, id), 'succeeded');
  const [record] = await allRecords(t.db);
  const onVolume = path.join(dir, 'files', ...record.key.split('/'));
  await fsp.rm(onVolume);
  // As if a download had found it gone before the mirror was configured.
  await t.catalog.setStatus(id, 'missing', 'File missing from storage. Please re-upload it.');

  const deps: DoctorDeps = { db: t.db, stores: storeMap(...t.stores.all()), mirror: t.stores.mirror, log: t.logs.log };
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
  const download = await request(t.app).get(`/v1/files/${id}/content`);
  expect(download.status).toBe(200);
  expect(sha256(download.body as Buffer)).toBe(sha256(data));

  const again = await runChecks(deps, scope);
  expect(again.problems).toEqual([]);
});

it('refuses to start when the mirror bucket does not exist, naming the variable to fix', async () => {
  const start = buildTestApp(s3Env(bucket, { STORAGE: 'volume', STORAGE_MIRROR: 's3', S3_BUCKET: 'no-such-bucket' }), dir);
  await expect(start).rejects.toThrow(ConfigError);
  await expect(start).rejects.toThrow(/^S3_BUCKET: bucket "no-such-bucket" does not exist .*\[the STORAGE_MIRROR=s3 store\]$/);
});
