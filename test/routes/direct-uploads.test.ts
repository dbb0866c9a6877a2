import { sweepExpiredUploads, startPendingUploadSweeper } from '../../src/uploads/pending-sweeper';
import { allRecords, buildTestApp, type TestApp } from '../helpers/app';
import { startS3Server, type S3TestBucket, type S3TestServer } from '../helpers/s3server';
import { s3Env } from '../helpers/s3env';
import { CATALOG_DATABASES, useCatalogDatabase } from '../helpers/postgres';
import { binary, randomData, sha256 } from '../helpers/streams';

let server: S3TestServer;
let bucket: S3TestBucket;
let t: TestApp;
beforeAll(async () => {
  server = await startS3Server();
});
afterAll(() => server.close());
afterEach(async () => t?.close());

function begin(body: object, owner = 'alice') {
  return t.http(owner).post('/v1/uploads').send(body);
}

function complete(id: string, owner = 'alice') {
  return t.http(owner).post(`/v1/uploads/${id}/complete`);
}

/** What a browser or SDK does with the answer: PUT the bytes to the URL with the headers given. */
async function putTo(upload: { method: string; url: string; headers: Record<string, string> }, data: Buffer) {
  return fetch(upload.url, { method: upload.method, headers: upload.headers, body: data });
}

describe.each(CATALOG_DATABASES)('direct uploads (catalog on %s)', (kind) => {
  const database = useCatalogDatabase(kind);

  describe('direct uploads to the bucket', () => {
    beforeEach(async () => {
      bucket = await server.newBucket();
      t = await buildTestApp({ ...(await database.env()), ...s3Env(bucket, { MAX_UPLOAD_BYTES: '1mb', ALLOWED_CONTENT_TYPES: 'image/*,application/pdf' }) });
    });

    it('creates a pending record and a PUT URL; completion checks size and sha256 and makes it downloadable', async () => {
      const data = randomData(300_000);
      const created = await begin({ name: 'scan.pdf', size: data.length, contentType: 'application/pdf', sha256: sha256(data) });
      expect(created.status).toBe(201);
      const { file, upload, links } = created.body;
      expect(file).toMatchObject({ name: 'scan.pdf', status: 'pending', store: 's3' });
      expect(upload).toMatchObject({ method: 'PUT', headers: { 'Content-Type': 'application/pdf' } });
      expect(upload.url.startsWith(`${bucket.endpoint}/${bucket.bucket}/`)).toBe(true);
      expect(links.complete).toBe(`/v1/uploads/${file.id}/complete`);
      expect((await t.http('alice').get(file.links.content)).body.error.code).toBe('file_pending');

      expect((await putTo(upload, data)).status).toBe(200);
      const done = await complete(file.id);
      expect(done.status).toBe(200);
      expect(done.body).toMatchObject({ id: file.id, status: 'ready', size: data.length, sha256: sha256(data) });

      const down = await t.http('alice').get(file.links.content).buffer(true).parse(binary);
      expect(down.status).toBe(200);
      expect(sha256(down.body)).toBe(sha256(data));
      expect(down.headers['content-type']).toBe('application/pdf');
      // A retried completion (say the first answer was lost) gives the same record.
      expect((await complete(file.id)).body).toMatchObject({ status: 'ready', sha256: sha256(data) });
      expect((await complete(file.id, 'bob')).status).toBe(404);
    });

    it('completes without a sha256, checking the size only', async () => {
      const data = randomData(1000);
      const { body } = await begin({ name: 'p.png', size: data.length, contentType: 'image/png' });
      await putTo(body.upload, data);
      const done = await complete(body.file.id);
      expect(done.body).toMatchObject({ status: 'ready', size: 1000, sha256: null });
      const down = await t.http('alice').get(body.file.links.content).buffer(true).parse(binary);
      expect(sha256(down.body)).toBe(sha256(data));
      expect(down.headers['etag']).toBe(`"${body.file.id}"`);
    });

    it('marks a wrong-size upload failed with the reason and deletes the object', async () => {
      const { body } = await begin({ name: 'short.pdf', size: 5000, contentType: 'application/pdf' });
      // s3rver does not check the Content-Length signed into the URL (S3 would refuse the PUT);
      // completion must catch the mismatch either way.
      await putTo(body.upload, randomData(4000));
      const done = await complete(body.file.id);
      expect(done.status).toBe(422);
      expect(done.body.error).toMatchObject({ code: 'upload_verification_failed', message: 'Uploaded 4000 bytes, but 5000 were announced.' });
      const record = await t.http('alice').get(`/v1/files/${body.file.id}`);
      expect(record.body).toMatchObject({ status: 'failed', statusMessage: 'Uploaded 4000 bytes, but 5000 were announced.' });
      expect(await bucket.objectKeys()).toEqual([]);
      expect((await complete(body.file.id)).body.error.code).toBe('upload_failed');
    });

    it('marks an upload whose bytes do not match the announced sha256 failed and deletes the object', async () => {
      const data = randomData(2000);
      const { body } = await begin({ name: 'x.png', size: 2000, contentType: 'image/png', sha256: sha256(data) });
      await putTo(body.upload, randomData(2000));
      const done = await complete(body.file.id);
      expect(done.status).toBe(422);
      expect(done.body.error.message).toMatch(new RegExp(`^The uploaded bytes have sha256 [0-9a-f]{64}, not the announced ${sha256(data)}\\.$`));
      expect((await allRecords(t.db))[0]).toMatchObject({ status: 'failed' });
      expect(await bucket.objectKeys()).toEqual([]);
    });

    it('refuses to complete before the bytes are there, keeping the upload pending', async () => {
      const { body } = await begin({ name: 'later.png', size: 10, contentType: 'image/png' });
      const early = await complete(body.file.id);
      expect(early.status).toBe(409);
      expect(early.body.error.code).toBe('upload_incomplete');
      await putTo(body.upload, randomData(10));
      expect((await complete(body.file.id)).body.status).toBe('ready');
    });

    it.each([
      [{ size: 10, contentType: 'image/png' }, 'name: '],
      [{ name: 'a.png', size: -1, contentType: 'image/png' }, 'size: '],
      [{ name: 'a.png', size: 1.5, contentType: 'image/png' }, 'size: '],
      [{ name: 'a.png', size: 10, contentType: 'png' }, 'contentType: must be a media type such as image/png'],
      [{ name: 'a.png', size: 10, contentType: 'image/png', sha256: 'abc' }, 'sha256: must be 64 hex digits'],
      [{ name: 'a.png', size: 10, contentType: 'image/png', owner: 'eve' }, 'owner'],
    ])('answers 422 for an invalid request %#', async (payload, problem) => {
      const res = await begin(payload);
      expect(res.status).toBe(422);
      expect(res.body.error.code).toBe('invalid_upload_request');
      expect(res.body.error.message).toContain(problem);
      expect(await allRecords(t.db)).toEqual([]);
    });

    it('answers 413 over MAX_UPLOAD_BYTES, 415 outside ALLOWED_CONTENT_TYPES, 400 for broken JSON, creating nothing', async () => {
      const big = await begin({ name: 'a.png', size: 1024 * 1024 + 1, contentType: 'image/png' });
      expect(big.status).toBe(413);
      expect(big.body.error.code).toBe('file_too_large');
      const type = await begin({ name: 'a.exe', size: 10, contentType: 'application/x-msdownload' });
      expect(type.status).toBe(415);
      expect(type.body.error.code).toBe('unsupported_file_type');
      const broken = await t.http().post('/v1/uploads').set('Content-Type', 'application/json').send('{"name":');
      expect(broken.status).toBe(400);
      expect(broken.body.error.code).toBe('invalid_json');
      expect(await allRecords(t.db)).toEqual([]);
      expect((await complete('0123456789abcdef0123456789abcdef')).status).toBe(404);
    });

    describe('expiry', () => {
      it('sweeps pending uploads past their expiry, record and object, and nothing else', async () => {
        const data = randomData(100);
        const putButNeverCompleted = (await begin({ name: 'a.png', size: 100, contentType: 'image/png' })).body;
        await putTo(putButNeverCompleted.upload, data);
        expect((await begin({ name: 'never-put.png', size: 100, contentType: 'image/png' })).status).toBe(201);
        const completed = (await begin({ name: 'c.png', size: 100, contentType: 'image/png' })).body;
        await putTo(completed.upload, data);
        await complete(completed.file.id);
        const viaForm = await t.http().post('/v1/files').attach('file', data, { filename: 'd.png', contentType: 'image/png' });
        expect(viaForm.status).toBe(201);

        const deps = { files: t.files, log: t.logs.log };
        expect(await sweepExpiredUploads(deps)).toBe(0);
        expect(await allRecords(t.db)).toHaveLength(4);

        // DIRECT_UPLOAD_EXPIRES_S is 3600 by default: a pending one is swept after twice that.
        const later = new Date(Date.now() + 2 * 3600 * 1000 + 1000);
        expect(await sweepExpiredUploads(deps, later)).toBe(2);
        const left = await allRecords(t.db);
        expect(left.map((r) => r.id).sort()).toEqual([completed.file.id, viaForm.body.files[0].id].sort());
        expect((await bucket.objectKeys()).sort()).toEqual(left.map((r) => r.key).sort());
      });

      it('runs in the background from startup until stopped', async () => {
        const { body } = await begin({ name: 'a.png', size: 3, contentType: 'image/png' });
        await putTo(body.upload, Buffer.from('abc'));
        await t.db.updateTable('files').set({ expires_at: new Date(Date.now() - 1000).toISOString() }).execute();
        const sweeper = startPendingUploadSweeper({ files: t.files, log: t.logs.log, intervalMs: 60_000 });
        await t.logs.waitFor((l) => l.msg === 'expired direct upload removed' && l.fileId === body.file.id);
        await sweeper.stop();
        expect(await allRecords(t.db)).toEqual([]);
        expect(await bucket.objectKeys()).toEqual([]);
      });

      it('refuses to complete an expired upload and removes it', async () => {
        const { body } = await begin({ name: 'a.png', size: 3, contentType: 'image/png' });
        await putTo(body.upload, Buffer.from('abc'));
        await t.db.updateTable('files').set({ expires_at: new Date(Date.now() - 1000).toISOString() }).execute();
        const res = await complete(body.file.id);
        expect(res.status).toBe(409);
        expect(res.body.error.code).toBe('upload_expired');
        expect(await allRecords(t.db)).toEqual([]);
        expect(await bucket.objectKeys()).toEqual([]);
      });
    });
  });

  it('answers 409 when the store cannot presign (volume), creating nothing', async () => {
    t = await buildTestApp(await database.env());
    const res = await begin({ name: 'a.png', size: 10, contentType: 'image/png' });
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('direct_upload_unsupported');
    expect(res.body.error.message).toContain('STORAGE=s3');
    expect(await allRecords(t.db)).toEqual([]);
  });
});
