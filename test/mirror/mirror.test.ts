import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { CreateBucketCommand, DeleteBucketCommand, DeleteObjectCommand } from '@aws-sdk/client-s3';
import { TaskQueue } from '../../src/tasks/queue';
import type { Worker } from '../../src/tasks/worker';
import { allRecords, buildTestApp, type TestApp } from '../helpers/app';
import { startS3Server, type S3TestBucket, type S3TestServer } from '../helpers/s3server';
import { s3Env } from '../helpers/s3env';
import { binary, randomData, sha256 } from '../helpers/streams';
import { makeTempDir } from '../helpers/tmp';
import { mirrorTaskOf, objectBytes, startWorker, taskReaches } from './helpers';

let server: S3TestServer;
let bucket: S3TestBucket;
let dir: string;
let t: TestApp;
const workers: Worker[] = [];

beforeAll(async () => {
  server = await startS3Server();
});
afterAll(() => server.close());
beforeEach(async () => {
  bucket = await server.newBucket();
  dir = await makeTempDir();
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop(0)));
  await t?.close();
  await fsp.rm(dir, { recursive: true, force: true });
});

/** A volume in the temp dir as the primary, the s3rver bucket as the mirror. */
const mirrored = () => buildTestApp(s3Env(bucket, { STORAGE: 'volume', STORAGE_MIRROR: 's3' }), dir);

function worker(options?: Parameters<typeof startWorker>[1]): Worker {
  const w = startWorker(t, options);
  workers.push(w);
  return w;
}

async function upload(data: Buffer, name = 'data.bin') {
  const res = await t.http().post('/v1/files').attach('file', data, name);
  expect(res.status).toBe(201);
  const [record] = (await allRecords(t.db)).filter((r) => r.id === res.body.files[0].id);
  return { file: res.body.files[0] as { id: string; links: { content: string; self: string } }, record };
}

const primaryPath = (key: string) => path.join(dir, 'files', ...key.split('/'));

it('copies an upload to the mirror in a durable task: the object has the same sha256, and the record says it is mirrored', async () => {
  t = await mirrored();
  const data = randomData(300_000);
  const { file, record } = await upload(data);
  const task = await mirrorTaskOf(t, file.id);
  expect(task.status).toBe('queued');

  worker();
  const done = await taskReaches(t, task, 'succeeded');
  expect(done.log.at(-1)!.message).toBe(`Copied ${data.length} bytes to the s3 mirror.`);
  expect(sha256(await objectBytes(server, bucket.bucket, record.key))).toBe(sha256(data));
  const [after] = await allRecords(t.db);
  expect(after.mirrored_at).not.toBeNull();
  expect(after.store).toBe('volume');
});

it('mirrors a task output once the task succeeds', async () => {
  t = await mirrored();
  const report = Buffer.from('a,b\n1,2\n');
  worker({ extra: { report: async (ctx) => void (await ctx.output('report.csv', 'text/csv', async (out) => out.end(report))) } });
  const producer = await t.queue.enqueue('report', 'anonymous', {});
  const finished = await taskReaches(t, producer, 'succeeded');
  const [outputId] = finished.outputFileIds;
  await taskReaches(t, await mirrorTaskOf(t, outputId), 'succeeded');
  const [record] = (await allRecords(t.db)).filter((r) => r.id === outputId);
  expect((await objectBytes(server, bucket.bucket, record.key)).toString()).toBe(report.toString());
});

it('serves a file whose primary copy was deleted from the mirror, and puts it back on the primary', async () => {
  t = await mirrored();
  worker();
  const data = randomData(200_000);
  const { file, record } = await upload(data);
  await taskReaches(t, await mirrorTaskOf(t, file.id), 'succeeded');

  await fsp.rm(primaryPath(record.key));
  const res = await t.http().get(file.links.content).buffer(true).parse(binary);
  expect(res.status).toBe(200);
  expect(sha256(res.body)).toBe(sha256(data));
  await t.logs.waitFor((l) => l.fileId === file.id && l.event === 'mirror.fallback');
  await t.logs.waitFor((l) => l.fileId === file.id && l.event === 'mirror.restore' && l.outcome === 'restored');
  expect(sha256(await fsp.readFile(primaryPath(record.key)))).toBe(sha256(data));
  expect((await t.http().get(file.links.self)).body.status).toBe('ready');

  // Both copies gone: only now is the file missing.
  await fsp.rm(primaryPath(record.key));
  await server.client().send(new DeleteObjectCommand({ Bucket: bucket.bucket, Key: record.key }));
  const gone = await t.http().get(file.links.content);
  expect(gone.status).toBe(404);
  expect(gone.body.error.code).toBe('file_missing');
  expect((await t.http().get(file.links.self)).body.status).toBe('missing');
});

it('builds a report from a source whose primary copy is gone, reading the mirror, and the source stays ready', async () => {
  t = await mirrored();
  worker();
  const csv = Buffer.from('name,amount\nalpha,1\nbeta,2\n');
  const { file, record } = await upload(csv, 'sales.csv');
  await taskReaches(t, await mirrorTaskOf(t, file.id), 'succeeded');
  await fsp.rm(primaryPath(record.key));

  const res = await t.http()
    .post('/v1/reports?wait=20')
    .send({ format: 'csv', title: 'From the mirror', source: { fileId: file.id } });
  expect(res.status).toBe(201);
  expect(res.body.status).toBe('succeeded');
  const output = res.body.outputs.find((o: { name: string }) => o.name === 'From the mirror.csv');
  const built = await t.http().get(output.links.content);
  expect(built.text).toContain('alpha');
  expect(built.text).toContain('beta');
  // Read from the mirror, not judged missing: the file still downloads.
  expect((await t.http().get(file.links.self)).body.status).toBe('ready');
  await t.logs.waitFor((l) => l.fileId === file.id && l.event === 'mirror.restore' && l.outcome === 'restored');
  expect((await t.http().get(file.links.content)).status).toBe(200);
});

it('pins the copy of a file on a Fly Machine’s volume to that Machine: another Machine’s worker leaves it, its own copies it', async () => {
  t = await buildTestApp(s3Env(bucket, { STORAGE: 'volume', STORAGE_MIRROR: 's3', FLY_MACHINE_ID: 'machine-a', FLY_REGION: 'ams' }), dir);
  const data = randomData(60_000);
  const { file, record } = await upload(data);
  expect(record.machine_id).toBe('machine-a');
  const task = await mirrorTaskOf(t, file.id);
  const elsewhere = new TaskQueue(t.db, undefined, undefined, 'machine-b');
  expect(await elsewhere.claim('worker-b', ['mirror'], 5000)).toBeUndefined();

  worker();
  await taskReaches(t, task, 'succeeded');
  expect(sha256(await objectBytes(server, bucket.bucket, record.key))).toBe(sha256(data));
});

it('answers a range from the mirror while the primary copy is gone', async () => {
  t = await mirrored();
  worker();
  const data = randomData(100_000);
  const { file, record } = await upload(data);
  await taskReaches(t, await mirrorTaskOf(t, file.id), 'succeeded');
  await fsp.rm(primaryPath(record.key));

  const res = await t.http().get(file.links.content).set('Range', 'bytes=1000-1999').buffer(true).parse(binary);
  expect(res.status).toBe(206);
  expect(res.body.equals(data.subarray(1000, 2000))).toBe(true);
  await t.logs.waitFor((l) => l.fileId === file.id && l.event === 'mirror.restore' && l.outcome === 'restored');
  expect(sha256(await fsp.readFile(primaryPath(record.key)))).toBe(sha256(data));
});

it('retries a mirror copy that failed while the bucket was unavailable', async () => {
  t = await mirrored();
  // The bucket disappears after the startup probe, and comes back after the first failure.
  await server.client().send(new DeleteBucketCommand({ Bucket: bucket.bucket }));
  const data = randomData(50_000);
  const { file, record } = await upload(data);
  const task = await mirrorTaskOf(t, file.id);
  worker({ retryBaseMs: 200 });
  await t.logs.waitFor((l) => l.taskId === task.id && l.msg === 'task attempt failed');
  await server.client().send(new CreateBucketCommand({ Bucket: bucket.bucket }));

  const done = await taskReaches(t, task, 'succeeded');
  expect(done.attempts).toBeGreaterThanOrEqual(2);
  expect(done.log.some((l) => l.message.includes('Retrying'))).toBe(true);
  expect(sha256(await objectBytes(server, bucket.bucket, record.key))).toBe(sha256(data));
});

it('runs a mirror copy queued before a restart once a worker runs again', async () => {
  t = await mirrored();
  const data = randomData(80_000);
  const { file, record } = await upload(data);
  await t.close();

  t = await mirrored();
  const task = await mirrorTaskOf(t, file.id);
  expect(task.status).toBe('queued');
  worker();
  await taskReaches(t, task, 'succeeded');
  expect(sha256(await objectBytes(server, bucket.bucket, record.key))).toBe(sha256(data));
});

it('fails the copy with a clear reason when the bytes no longer match the record, and keeps nothing in the mirror', async () => {
  t = await mirrored();
  const data = randomData(40_000);
  const { file, record } = await upload(data);
  // Same size, different bytes: the disk rotted before the copy ran.
  await fsp.writeFile(primaryPath(record.key), randomData(data.length));
  worker();

  const failed = await taskReaches(t, await mirrorTaskOf(t, file.id), 'failed');
  expect(failed.attempts).toBe(1);
  expect(failed.errorCode).toBe('mirror_verification_failed');
  expect(failed.errorMessage).toContain(`the record says ${data.length} bytes with sha256 ${sha256(data)}`);
  expect(await bucket.objectKeys()).toEqual([]);
  expect((await allRecords(t.db))[0].mirrored_at).toBeNull();
});

it('removes the mirror copy when the file is deleted, and a copy of a file deleted before it ran does nothing', async () => {
  t = await mirrored();
  worker();
  const { file } = await upload(randomData(30_000));
  await taskReaches(t, await mirrorTaskOf(t, file.id), 'succeeded');
  expect(await bucket.objectKeys()).toHaveLength(1);
  expect((await t.http().delete(file.links.self)).status).toBe(204);
  expect(await bucket.objectKeys()).toEqual([]);
  expect(await t.storedFiles()).toEqual([]);

  await Promise.all(workers.splice(0).map((w) => w.stop(0)));
  const early = await upload(randomData(10_000));
  expect((await t.http().delete(early.file.links.self)).status).toBe(204);
  const task = await mirrorTaskOf(t, early.file.id);
  worker();
  const done = await taskReaches(t, task, 'succeeded');
  expect(done.log.at(-1)!.message).toBe('The file was deleted before it was copied; nothing to do.');
  expect(await bucket.objectKeys()).toEqual([]);
  expect(fs.existsSync(primaryPath(early.record.key))).toBe(false);
});
