import { directUploadResponse, partUrlsResponse } from '../../src/api/schemas';
import { runChecks } from '../../src/doctor/doctor';
import { doctorDeps } from '../../src/resources';
import type { S3Store } from '../../src/storage/s3';
import { sweepAbandonedUploads } from '../../src/uploads/incomplete-multipart';
import { sweepExpiredUploads } from '../../src/uploads/pending-sweeper';
import { allRecords, buildTestApp, type TestApp } from '../helpers/app';
import { CATALOG_DATABASES, useCatalogDatabase } from '../helpers/postgres';
import { startS3Server, type S3TestBucket, type S3TestServer } from '../helpers/s3server';
import { s3Env } from '../helpers/s3env';
import { binary, randomData, sha256 } from '../helpers/streams';

const MIB = 1024 * 1024;

let server: S3TestServer;
let bucket: S3TestBucket;
let t: TestApp;
beforeAll(async () => {
  server = await startS3Server();
});
afterAll(() => server.close());
afterEach(async () => t?.close());

interface PartUrl {
  partNumber: number;
  size: number;
  url: string;
}

/** Asks for parts unless the body says otherwise (a size past 5 GiB goes up in parts anyway). */
function begin(body: object, owner = 'alice') {
  return t.http(owner).post('/v1/uploads').send({ multipart: true, ...body });
}

function complete(id: string, parts?: { partNumber: number; etag: string }[], owner = 'alice') {
  const req = t.http(owner).post(`/v1/uploads/${id}/complete`);
  return parts ? req.send({ parts }) : req;
}

/** What a browser does with a part URL: PUT that slice of the file with plain fetch, keep the ETag. */
async function putPart(part: PartUrl, partSize: number, data: Buffer): Promise<{ partNumber: number; etag: string }> {
  const start = (part.partNumber - 1) * partSize;
  const res = await fetch(part.url, { method: 'PUT', body: data.subarray(start, start + part.size) });
  expect(res.status).toBe(200);
  const etag = res.headers.get('etag');
  expect(etag).toBeTruthy();
  return { partNumber: part.partNumber, etag: etag! };
}

/** Multipart uploads the store lists as incomplete, whatever their age. */
async function incompleteUploads() {
  return (await (t.store as S3Store).listIncompleteUploads({ startedBefore: new Date(Date.now() + 3600_000) })).items;
}

describe.each(CATALOG_DATABASES)('direct uploads in parts (catalog on %s)', (kind) => {
  const database = useCatalogDatabase(kind);

  beforeEach(async () => {
    bucket = await server.newBucket();
    // 5 MiB parts, S3's smallest: a 12 MiB file goes up in three.
    t = await buildTestApp({ ...(await database.env()), ...s3Env(bucket, { DIRECT_UPLOAD_PART_SIZE: '5mb', MAX_UPLOAD_BYTES: '2gb' }) });
  });

  it('uploads 12 MiB in three presigned parts, completes with their ETags, and serves the same bytes', async () => {
    const data = randomData(12 * MIB);
    const created = await begin({ name: 'video.mp4', size: data.length, contentType: 'video/mp4', sha256: sha256(data) });
    expect(created.status).toBe(201);
    const { file, upload, links } = created.body;
    expect(file).toMatchObject({ status: 'pending', size: data.length });
    expect(upload).toMatchObject({ method: 'multipart', partSize: 5 * MIB, partCount: 3, next: null });
    expect(upload.parts.map((p: PartUrl) => [p.partNumber, p.size])).toEqual([
      [1, 5 * MIB],
      [2, 5 * MIB],
      [3, 2 * MIB],
    ]);
    expect(links).toEqual({ complete: `/v1/uploads/${file.id}/complete`, cancel: `/v1/uploads/${file.id}` });
    expect(directUploadResponse.safeParse(created.body).error).toBeUndefined();

    // In progress: not ready, and not taken for an abandoned multipart upload by the sweep.
    const parts = await Promise.all((upload.parts as PartUrl[]).map((p) => putPart(p, upload.partSize, data)));
    expect(await sweepAbandonedUploads({ stores: t.stores, files: t.files, log: t.logs.log }, 0)).toBe(0);
    expect((await t.http('alice').get(file.links.content)).body.error.code).toBe('file_pending');

    const done = await complete(file.id, parts);
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({ id: file.id, status: 'ready', size: data.length, sha256: sha256(data) });
    const down = await t.http('alice').get(file.links.content).buffer(true).parse(binary);
    expect(down.status).toBe(200);
    expect(sha256(down.body)).toBe(sha256(data));
    expect(await incompleteUploads()).toEqual([]);
    // A retried completion (the first answer lost) answers the same record.
    expect((await complete(file.id, parts)).body).toMatchObject({ status: 'ready', sha256: sha256(data) });
  });

  it('refuses a completion with a wrong ETag, keeping the upload pending, then completes with the right ones', async () => {
    const data = randomData(11 * MIB);
    const { body } = await begin({ name: 'a.bin', size: data.length, contentType: 'application/octet-stream' });
    const parts = await Promise.all((body.upload.parts as PartUrl[]).map((p) => putPart(p, body.upload.partSize, data)));
    const wrong = parts.map((p) => (p.partNumber === 2 ? { ...p, etag: '"0123456789abcdef0123456789abcdef"' } : p));

    const refused = await complete(body.file.id, wrong);
    expect(refused.status).toBe(422);
    expect(refused.body.error).toMatchObject({ code: 'upload_part_mismatch', requestId: expect.any(String) });
    expect(refused.body.error.message).toBe(
      `Part 2's ETag is ${parts[1].etag}, not "0123456789abcdef0123456789abcdef": send the ETag its PUT answered, or PUT the part again.`,
    );
    expect((await t.http('alice').get(`/v1/files/${body.file.id}`)).body.status).toBe('pending');
    expect(await bucket.objectKeys()).toEqual([]);

    const noParts = await complete(body.file.id);
    expect(noParts.status).toBe(422);
    expect(noParts.body.error.code).toBe('parts_required');
    const skipped = await complete(body.file.id, [parts[0], parts[2]]);
    expect(skipped.status).toBe(422);
    expect(skipped.body.error.code).toBe('invalid_upload_request');

    // ETags as a header reads them, with or without quotes, are the same.
    const done = await complete(body.file.id, parts.map((p) => ({ ...p, etag: p.etag.replace(/"/g, '') })));
    expect(done.body).toMatchObject({ status: 'ready', size: data.length });
  });

  it('refuses to complete while a part is missing, then completes once it is PUT', async () => {
    const data = randomData(6 * MIB);
    const { body } = await begin({ name: 'b.bin', size: data.length, contentType: 'application/octet-stream' });
    const [first, second] = body.upload.parts as PartUrl[];
    const one = await putPart(first, body.upload.partSize, data);
    const early = await complete(body.file.id, [one, { partNumber: 2, etag: '"x"' }]);
    expect(early.status).toBe(409);
    expect(early.body.error).toMatchObject({ code: 'upload_incomplete', message: 'Part 2 of 2 not uploaded yet: PUT it, then complete.' });
    const two = await putPart(second, body.upload.partSize, data);
    expect((await complete(body.file.id, [one, two])).body.status).toBe('ready');
  });

  it('fails an upload whose assembled bytes do not match the announced sha256, leaving nothing in the bucket', async () => {
    const data = randomData(6 * MIB);
    const { body } = await begin({ name: 'c.bin', size: data.length, contentType: 'application/octet-stream', sha256: sha256(randomData(10)) });
    const parts = await Promise.all((body.upload.parts as PartUrl[]).map((p) => putPart(p, body.upload.partSize, data)));
    const done = await complete(body.file.id, parts);
    expect(done.status).toBe(422);
    expect(done.body.error.code).toBe('upload_verification_failed');
    expect((await allRecords(t.db))[0]).toMatchObject({ status: 'failed' });
    expect(await bucket.objectKeys()).toEqual([]);
    expect(await incompleteUploads()).toEqual([]);
    const cancel = await t.http('alice').delete(body.links.cancel);
    expect(cancel.status).toBe(409);
    expect(cancel.body.error.code).toBe('upload_failed');
  });

  it('cancels with DELETE: the parts are aborted and the record removed', async () => {
    const data = randomData(11 * MIB);
    const { body } = await begin({ name: 'd.bin', size: data.length, contentType: 'application/octet-stream' });
    await putPart(body.upload.parts[0], body.upload.partSize, data);
    expect(await incompleteUploads()).toHaveLength(1);

    expect((await t.http('bob').delete(body.links.cancel)).status).toBe(404);
    const cancelled = await t.http('alice').delete(body.links.cancel);
    expect(cancelled.status).toBe(204);
    expect(await incompleteUploads()).toEqual([]);
    expect(await bucket.inProgressUploads()).toEqual([]);
    expect(await bucket.objectKeys()).toEqual([]);
    expect(await allRecords(t.db)).toEqual([]);
    expect((await complete(body.file.id)).status).toBe(404);
    expect((await t.http('alice').delete(body.links.cancel)).status).toBe(404);
  });

  it('aborts an expired upload in parts in the expiry sweep', async () => {
    const data = randomData(6 * MIB);
    const { body } = await begin({ name: 'e.bin', size: data.length, contentType: 'application/octet-stream' });
    await putPart(body.upload.parts[0], body.upload.partSize, data);
    const deps = { files: t.files, log: t.logs.log };
    expect(await sweepExpiredUploads(deps)).toBe(0);
    expect(await incompleteUploads()).toHaveLength(1);

    // DIRECT_UPLOAD_EXPIRES_S is 3600 by default: a pending one is swept after twice that.
    expect(await sweepExpiredUploads(deps, new Date(Date.now() + 2 * 3600 * 1000 + 1000))).toBe(1);
    expect(await incompleteUploads()).toEqual([]);
    expect(await bucket.inProgressUploads()).toEqual([]);
    expect(await allRecords(t.db)).toEqual([]);
  });

  it('is no problem for the doctor while it is in progress, however long, only once expired', async () => {
    const data = randomData(6 * MIB);
    const { body } = await begin({ name: 'slow.bin', size: data.length, contentType: 'application/octet-stream' });
    await putPart(body.upload.parts[0], body.upload.partSize, data);
    const deps = doctorDeps(t.resources, t.config, t.logs.log);
    // No grace at all: only the upload's own expiry says it is in flight.
    expect((await runChecks(deps, { graceMs: 0, verify: false })).problems).toEqual([]);

    await t.db.updateTable('files').set({ expires_at: new Date(Date.now() - 1000).toISOString() }).execute();
    const expired = await runChecks(deps, { graceMs: 0, verify: false });
    expect(expired.problems).toEqual([expect.objectContaining({ kind: 'stale_pending', fileId: body.file.id })]);
  });

  it('hands out part URLs a batch at a time, fresh on request', async () => {
    // 250 parts at the 5 MiB part size: 100 in the first answer, the rest on request. No byte is PUT.
    const size = 250 * 5 * MIB - 1;
    const { body } = await begin({ name: 'big.bin', size, contentType: 'application/octet-stream' });
    expect(body.upload).toMatchObject({ partCount: 250, next: `/v1/uploads/${body.file.id}/parts?from=101` });
    expect(body.upload.parts).toHaveLength(100);
    // Asking for more URLs keeps the upload alive as long again as a new one (2 x 3600 s).
    await t.db.updateTable('files').set({ expires_at: new Date(Date.now() + 60_000).toISOString() }).execute();
    const second = await t.http('alice').get(body.upload.next);
    const [record] = await allRecords(t.db);
    expect(Date.parse(record.expires_at!)).toBeGreaterThan(Date.now() + 2 * 3600_000 - 60_000);
    expect(second.status).toBe(200);
    expect(partUrlsResponse.safeParse(second.body).error).toBeUndefined();
    expect(second.body.parts.map((p: PartUrl) => p.partNumber)).toEqual(Array.from({ length: 100 }, (_, i) => 101 + i));
    const last = await t.http('alice').get(second.body.next);
    expect(last.body.parts.map((p: PartUrl) => [p.partNumber, p.size]).at(-1)).toEqual([250, 5 * MIB - 1]);
    expect(last.body.next).toBeNull();
    expect(Date.parse(last.body.expiresAt)).toBeGreaterThan(Date.now() + 3600_000 - 60_000);
    expect((await t.http('alice').get(`/v1/uploads/${body.file.id}/parts?from=251`)).status).toBe(422);
    expect((await t.http('bob').get(body.upload.next)).status).toBe(404);
  });

  it('sizes parts so that 10,000 hold the file, up to the 5 TiB an object can be', async () => {
    await t.close();
    t = await buildTestApp({ ...(await database.env()), ...s3Env(bucket, { DIRECT_UPLOAD_PART_SIZE: '5mb', MAX_UPLOAD_BYTES: '6000gb' }) });
    const size = 100_000 * MIB;
    // Past 5 GiB a file goes up in parts whether or not the client asked; one PUT can't take it.
    const { body } = await begin({ name: 'huge.img', size, contentType: 'application/octet-stream', multipart: undefined });
    expect(body.upload).toMatchObject({ method: 'multipart', partSize: 10 * MIB, partCount: 10_000 });
    expect((await t.http('alice').delete(body.links.cancel)).status).toBe(204);
    const tooBig = await begin({ name: 'huger.img', size: 5 * 1024 ** 4 + 1, contentType: 'application/octet-stream' });
    expect(tooBig.status).toBe(413);
    expect(tooBig.body.error.code).toBe('file_too_large');
    const onePut = await begin({ name: 'g.img', size: 5 * 1024 ** 3 + 1, contentType: 'application/octet-stream', multipart: false });
    expect(onePut.status).toBe(413);
    expect(onePut.body.error.message).toBe('One PUT takes at most 5368709120 bytes (5 GiB): leave out "multipart": false to upload in parts.');
    expect(await allRecords(t.db)).toEqual([]);
  });

  it('keeps one PUT up to 5 GiB for a client that does not ask for parts (as before parts existed)', async () => {
    const data = randomData(12 * MIB);
    const { body } = await begin({ name: 'f.bin', size: data.length, contentType: 'application/octet-stream', multipart: undefined });
    expect(body.upload).toMatchObject({ method: 'PUT' });
    const parts = await t.http('alice').get(`/v1/uploads/${body.file.id}/parts`);
    expect(parts.status).toBe(409);
    expect(parts.body.error.code).toBe('not_a_multipart_upload');
    expect((await fetch(body.upload.url, { method: 'PUT', headers: body.upload.headers, body: data })).status).toBe(200);
    expect((await complete(body.file.id)).body.status).toBe('ready');
    const late = await t.http('alice').delete(`/v1/uploads/${body.file.id}`);
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe('upload_completed');
  });
});
