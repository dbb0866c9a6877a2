import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { allRecords, buildTestApp, type TestApp } from '../helpers/app';
import { startS3Server, type S3TestBucket, type S3TestServer } from '../helpers/s3server';
import { s3Env } from '../helpers/s3env';
import { binary, randomData, sha256 } from '../helpers/streams';
import { makeTempDir } from '../helpers/tmp';

let server: S3TestServer;
let bucket: S3TestBucket;
let dir: string;
let t: TestApp;
beforeAll(async () => {
  server = await startS3Server();
});
afterAll(() => server.close());
beforeEach(async () => {
  bucket = await server.newBucket();
  dir = await makeTempDir();
});
afterEach(async () => {
  await t?.close();
  await fsp.rm(dir, { recursive: true, force: true });
});

it('after switching to STORAGE=s3, files kept on the volume still download and delete; new ones go to the bucket', async () => {
  const old = randomData(50_000);
  t = await buildTestApp({}, dir);
  const before = await t.http().post('/v1/files').attach('file', old, 'old.bin');
  expect(before.body.files[0].store).toBe('volume');
  const second = await t.http().post('/v1/files').attach('file', Buffer.from('two'), 'two.txt');
  await t.close();

  t = await buildTestApp(s3Env(bucket), dir);
  const fresh = randomData(60_000);
  const after = await t.http().post('/v1/files').attach('file', fresh, 'new.bin');
  expect(after.body.files[0].store).toBe('s3');

  const oldDown = await t.http().get(before.body.files[0].links.content).buffer(true).parse(binary);
  expect(oldDown.status).toBe(200);
  expect(sha256(oldDown.body)).toBe(sha256(old));
  const newDown = await t.http().get(after.body.files[0].links.content).buffer(true).parse(binary);
  expect(sha256(newDown.body)).toBe(sha256(fresh));

  const [oldRecord] = (await allRecords(t.db)).filter((r) => r.id === before.body.files[0].id);
  const oldPath = path.join(dir, 'files', ...oldRecord.key.split('/'));
  expect(fs.existsSync(oldPath)).toBe(true);
  expect((await t.http().delete(`/v1/files/${oldRecord.id}`)).status).toBe(204);
  expect(fs.existsSync(oldPath)).toBe(false);
  expect((await t.http().delete(after.body.files[0].links.self)).status).toBe(204);
  expect(await bucket.objectKeys()).toEqual([]);
  expect((await t.http().get(second.body.files[0].links.content)).text).toBe('two');
});

it('answers 503 for a file in a store this server cannot reach, and keeps its record', async () => {
  t = await buildTestApp({}, dir);
  const { body } = await t.http().post('/v1/files').attach('file', Buffer.from('x'), 'x.txt');
  await t.db.updateTable('files').set({ store: 's3' }).execute();
  const down = await t.http().get(body.files[0].links.content);
  expect(down.status).toBe(503);
  expect(down.body.error).toMatchObject({ code: 'store_unavailable', message: expect.stringContaining('"s3" store') });
  expect((await t.http().delete(body.files[0].links.self)).status).toBe(503);
  expect(await allRecords(t.db)).toHaveLength(1);
});
