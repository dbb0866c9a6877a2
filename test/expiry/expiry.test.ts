import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import request from 'supertest';
import { FileCatalog } from '../../src/catalog/files';
import { sweepExpired } from '../../src/expiry/sweeper';
import { Files } from '../../src/files/files';
import { sweepExpiredUploads } from '../../src/uploads/pending-sweeper';
import { ServiceMetrics } from '../../src/metrics/metrics';
import { verifyUsage } from '../../src/quotas/verify';
import { expirySweepDeps } from '../../src/resources';
import { allRecords, buildTestApp, type TestApp } from '../helpers/app';
import { startS3Server, type S3TestBucket, type S3TestServer } from '../helpers/s3server';
import { s3Env } from '../helpers/s3env';
import { randomData } from '../helpers/streams';
import { makeTempDir } from '../helpers/tmp';
import { mirrorTaskOf, startWorker, taskReaches } from '../mirror/helpers';

let t: TestApp;
afterEach(async () => t?.close());

const sweep = (app: TestApp, options: Parameters<typeof expirySweepDeps>[3] = {}, now?: Date) => sweepExpired(expirySweepDeps(app.resources, app.config, app.logs.log, options), now);

/** Resolves once the clock has passed `iso` (a lifetime's end is a time, not an event to hear of). */
const past = (iso: string) => new Promise((resolve) => setTimeout(resolve, Math.max(0, Date.parse(iso) - Date.now() + 5)));

const blobPath = (dir: string, key: string) => path.join(dir, 'files', ...key.split('/'));

describe('a file with a lifetime, on a volume mirrored to a bucket', () => {
  let server: S3TestServer;
  let bucket: S3TestBucket;
  let dir: string;
  beforeAll(async () => {
    server = await startS3Server();
  });
  afterAll(() => server.close());
  beforeEach(async () => {
    bucket = await server.newBucket();
    dir = await makeTempDir();
    t = await buildTestApp(s3Env(bucket, { STORAGE: 'volume', STORAGE_MIRROR: 's3' }), dir);
  });
  afterEach(async () => {
    await t.close();
    await fsp.rm(dir, { recursive: true, force: true });
  });

  const inMirror = (key: string) =>
    server
      .client()
      .send(new HeadObjectCommand({ Bucket: bucket.bucket, Key: key }))
      .then(
        () => true,
        () => false,
      );

  it('answers 410 file_expired once its second is up, is hidden from lists, and loses its blob, mirror copy and record at the sweep', async () => {
    const res = await t.http().post('/v1/files').field('expiresIn', '1s').attach('file', randomData(5000), 'short.bin');
    expect(res.status).toBe(201);
    const file = res.body.files[0];
    expect(Date.parse(file.expiresAt) - Date.parse(file.updatedAt)).toBe(1000);
    const [record] = await allRecords(t.db);
    const worker = startWorker(t);
    await taskReaches(t, await mirrorTaskOf(t, file.id), 'succeeded');
    await worker.stop(0);
    expect(fs.existsSync(blobPath(dir, record.key))).toBe(true);
    expect(await inMirror(record.key)).toBe(true);
    expect((await t.http().get(file.links.content)).status).toBe(200);

    await past(file.expiresAt);
    const gone = await t.http().get(file.links.content);
    expect([gone.status, gone.body.error.code]).toEqual([410, 'file_expired']);
    expect((await t.http().head(file.links.content)).status).toBe(410);
    expect((await t.http().get('/v1/files')).body.files).toEqual([]);
    expect((await t.http().get(file.links.self)).body).toMatchObject({ id: file.id, status: 'expired', expiresAt: file.expiresAt });

    const expired: string[] = [];
    const first = await sweep(t, { onExpired: async (records) => void expired.push(...records.map((r) => r.id)) });
    expect(first).toEqual({ swept: true, expired: 1, removed: 1, failed: 0 });
    expect(expired).toEqual([file.id]);
    expect(fs.existsSync(blobPath(dir, record.key))).toBe(false);
    expect(await inMirror(record.key)).toBe(false);
    expect(await allRecords(t.db)).toEqual([]);
    expect((await t.http().get(file.links.self)).status).toBe(404);
  });

  it('finishes what a crash between the steps left: an expired record with its blob and mirror copy, one with its blob only gone', async () => {
    const up = async (name: string) => (await t.http().post('/v1/files').set('Stowage-Expires-In', '1h').attach('file', randomData(100), name)).body.files[0];
    const a = await up('a.bin');
    const b = await up('b.bin');
    const keep = (await t.http().post('/v1/files').attach('file', randomData(100), 'keep.bin')).body.files[0];
    const worker = startWorker(t);
    for (const f of [a, b, keep]) await taskReaches(t, await mirrorTaskOf(t, f.id), 'succeeded');
    await worker.stop(0);
    const records = await allRecords(t.db);
    const key = (id: string) => records.find((r) => r.id === id)!.key;
    // Killed after the first step (a), and after the blob went (b).
    await t.db.updateTable('files').set({ status: 'expired' }).where('id', 'in', [a.id, b.id]).execute();
    await fsp.rm(blobPath(dir, key(b.id)));
    // `stowage usage --verify` doesn't call missing a blob the sweep is deleting.
    expect((await verifyUsage({ db: t.db, stores: t.resources.stores })).differences).toEqual([]);

    const metrics = new ServiceMetrics();
    expect(await sweep(t, { metrics })).toEqual({ swept: true, expired: 0, removed: 2, failed: 0 });
    // The gauges count what is left ready, per store.
    expect(await metrics.registry.getSingleMetricAsString('stowage_stored_files')).toContain('stowage_stored_files{store="volume"} 1');
    expect(await metrics.registry.getSingleMetricAsString('stowage_stored_bytes')).toContain('stowage_stored_bytes{store="volume"} 100');
    expect((await allRecords(t.db)).map((r) => r.id)).toEqual([keep.id]);
    for (const id of [a.id, b.id]) {
      expect(fs.existsSync(blobPath(dir, key(id)))).toBe(false);
      expect(await inMirror(key(id))).toBe(false);
    }
    expect(await inMirror(key(keep.id))).toBe(true);
    // Nothing left: a second sweep has nothing to do.
    expect(await sweep(t)).toEqual({ swept: true, expired: 0, removed: 0, failed: 0 });
  });
});

describe('lifetimes given at upload', () => {
  beforeEach(async () => {
    t = await buildTestApp();
  });

  const lifetimeOf = (file: { expiresAt: string; updatedAt: string }) => Date.parse(file.expiresAt) - Date.parse(file.updatedAt);

  it('takes the form field before or after the files, or the header; the field wins over the header', async () => {
    const before = await t.http().post('/v1/files').field('expiresIn', '7d').attach('file', Buffer.from('a'), 'a.txt');
    expect(lifetimeOf(before.body.files[0])).toBe(7 * 86_400_000);
    const after = await t.http().post('/v1/files').attach('file', Buffer.from('a'), 'a.txt').attach('file', Buffer.from('b'), 'b.txt').field('expiresIn', '90s');
    expect(after.body.files.map(lifetimeOf)).toEqual([90_000, 90_000]);
    const header = await t.http().post('/v1/files').set('Stowage-Expires-In', '12h').attach('file', Buffer.from('a'), 'a.txt');
    expect(lifetimeOf(header.body.files[0])).toBe(12 * 3_600_000);
    const both = await t.http().post('/v1/files').set('Stowage-Expires-In', '12h').field('expiresIn', '1h').attach('file', Buffer.from('a'), 'a.txt');
    expect(lifetimeOf(both.body.files[0])).toBe(3_600_000);
    // What the upload answered is what the record holds.
    for (const res of [before, after, header, both]) {
      for (const f of res.body.files) expect((await t.http().get(f.links.self)).body.expiresAt).toBe(f.expiresAt);
    }
    const forever = await t.http().post('/v1/files').attach('file', Buffer.from('a'), 'a.txt');
    expect(forever.body.files[0].expiresAt).toBeNull();
  });

  it('refuses an invalid lifetime with 400 invalid_expires_in and keeps nothing, wherever it is sent', async () => {
    const cases = [
      t.http().post('/v1/files').set('Stowage-Expires-In', 'soon').attach('file', randomData(1000), 'a.bin'),
      t.http().post('/v1/files').field('expiresIn', '0s').attach('file', randomData(1000), 'a.bin'),
      t.http().post('/v1/files').attach('file', randomData(1000), 'a.bin').field('expiresIn', '-1d'),
      t.http().post('/v1/files').attach('file', randomData(1000), 'a.bin').field('expiresIn', '1d').field('expiresIn', '2d'),
    ];
    for (const res of await Promise.all(cases)) {
      expect([res.status, res.body.error.code]).toEqual([400, 'invalid_expires_in']);
      expect(res.body.error.requestId).toBeTruthy();
    }
    expect(await allRecords(t.db)).toEqual([]);
    expect(await t.storedFiles()).toEqual([]);
  });

  it('gives files uploaded through an upload link the link\'s lifetime, whatever the upload asks', async () => {
    const link = await t.http('alice').post('/v1/upload-links').send({ fileExpiresIn: '2d' });
    expect(link.status).toBe(201);
    const res = await request(t.app).post(new URL(link.body.url).pathname).field('expiresIn', '1h').attach('file', Buffer.from('hello'), 'h.txt');
    expect(res.status).toBe(201);
    expect(lifetimeOf(res.body.files[0])).toBe(2 * 86_400_000);
    const bad = await t.http('alice').post('/v1/upload-links').send({ fileExpiresIn: 'later' });
    expect([bad.status, bad.body.error.code]).toEqual([400, 'invalid_expires_in']);
  });
});

describe('direct uploads with a lifetime', () => {
  let server: S3TestServer;
  beforeAll(async () => {
    server = await startS3Server();
  });
  afterAll(() => server.close());

  it('keep the lifetime apart from the upload\'s own deadline until completion, then count it from there', async () => {
    t = await buildTestApp(s3Env(await server.newBucket()));
    const data = randomData(1000);
    const bad = await t.http().post('/v1/uploads').send({ name: 'd.bin', size: data.length, contentType: 'application/octet-stream', expiresIn: 'nope' });
    expect([bad.status, bad.body.error.code]).toEqual([400, 'invalid_expires_in']);
    expect(await allRecords(t.db)).toEqual([]);

    const created = await t.http().post('/v1/uploads').send({ name: 'd.bin', size: data.length, contentType: 'application/octet-stream', expiresIn: '10d' });
    expect(created.status).toBe(201);
    expect(created.body.file.expiresAt).toBeNull();
    const { upload, file } = created.body;
    expect((await fetch(upload.url, { method: 'PUT', headers: upload.headers, body: data })).status).toBe(200);
    const done = await t.http().post(`/v1/uploads/${file.id}/complete`);
    expect(done.body.status).toBe('ready');
    expect(Date.parse(done.body.expiresAt) - Date.parse(done.body.updatedAt)).toBe(10 * 86_400_000);

    // A direct upload with a lifetime that is never completed is still swept once its own deadline passes.
    const abandoned = await t.http().post('/v1/uploads').send({ name: 'a.bin', size: 10, contentType: 'application/octet-stream', expiresIn: '30d' });
    expect(await sweepExpiredUploads({ files: t.files, log: t.logs.log }, new Date(Date.now() + 86_400_000))).toBe(1);
    expect((await t.http().get(`/v1/files/${abandoned.body.file.id}`)).status).toBe(404);
    // And the expiry sweep leaves the completed file alone until its time.
    expect(await sweep(t)).toMatchObject({ expired: 0, removed: 0 });
    expect((await t.http().get(done.body.links.content)).status).toBe(200);
  });
});

describe('report outputs', () => {
  const columns = [{ key: 'n', header: 'N', type: 'integer' }];
  const report = async (extra: object = {}) => {
    const res = await t.http().post('/v1/reports?wait=20').send({ format: 'csv', title: 'Kept', columns, rows: [{ n: 1 }], ...extra });
    expect(res.status).toBe(201);
    return (await t.http().get(res.body.outputs[0].links.self)).body as { expiresAt: string | null; updatedAt: string };
  };
  const lifetime = (file: { expiresAt: string | null; updatedAt: string }) => Date.parse(file.expiresAt!) - Date.parse(file.updatedAt);

  it('are kept REPORT_TTL (30 days by default) unless the request says otherwise', async () => {
    t = await buildTestApp();
    const worker = t.startTaskWorker();
    try {
      expect(lifetime(await report())).toBe(30 * 86_400_000);
      expect(lifetime(await report({ expiresIn: '2h' }))).toBe(2 * 3_600_000);
      expect((await report({ expiresIn: null })).expiresAt).toBeNull();
      const bad = await t.http().post('/v1/reports').send({ format: 'csv', title: 'x', columns, rows: [], expiresIn: 'a while' });
      expect([bad.status, bad.body.error.code]).toEqual([400, 'invalid_expires_in']);
    } finally {
      await worker.stop(0);
    }
  });

  it('take the configured REPORT_TTL, and are kept until deleted with never', async () => {
    t = await buildTestApp({ REPORT_TTL: '12h' });
    let worker = t.startTaskWorker();
    expect(lifetime(await report())).toBe(12 * 3_600_000);
    await worker.stop(0);
    await t.close();
    t = await buildTestApp({ REPORT_TTL: 'never' });
    worker = t.startTaskWorker();
    expect((await report()).expiresAt).toBeNull();
    await worker.stop(0);
  });
});

describe('placement on Fly volumes', () => {
  it('each Machine sweeps only the files on its own volume', async () => {
    t = await buildTestApp({ FLY_MACHINE_ID: 'machine-a' });
    const file = (await t.http().post('/v1/files').field('expiresIn', '1h').attach('file', Buffer.from('x'), 'x.txt')).body.files[0];
    await t.db.updateTable('files').set({ delete_at: '2020-01-01T00:00:00.000Z' }).execute();
    // Machine b's sweep (on the same catalog) leaves it; a's removes it.
    const placement = { machineId: 'machine-b', region: null };
    const filesOnB = new Files({ db: t.db, catalog: new FileCatalog(t.db, placement), stores: t.stores, placement });
    const onB = await sweepExpired({ ...expirySweepDeps(t.resources, { ...t.config, placement }, t.logs.log), files: filesOnB });
    expect(onB).toMatchObject({ swept: true, removed: 0 });
    expect((await allRecords(t.db))[0]).toMatchObject({ id: file.id, machine_id: 'machine-a' });
    expect(await sweep(t)).toMatchObject({ swept: true, expired: 1, removed: 1 });
  });
});
