import fsp from 'node:fs/promises';
import path from 'node:path';
import request from 'supertest';
import { allRecords, buildTestApp, type TestApp } from '../helpers/app';
import type { Env } from '../../src/config';
import { CATALOG_DATABASES, useCatalogDatabase } from '../helpers/postgres';
import { binary, randomData, sha256 } from '../helpers/streams';

let t: TestApp;
afterEach(async () => t?.close());

/** Uploads `files` in one form with `owner`'s key (or through the agent given). */
async function upload(files: { name: string; data: Buffer; type?: string }[], as: string | ReturnType<TestApp['http']> = 'anonymous') {
  let req = (typeof as === 'string' ? t.http(as) : as).post('/v1/files');
  for (const f of files) req = req.attach('file', f.data, { filename: f.name, contentType: f.type ?? 'application/octet-stream' });
  return req;
}

async function expectNothingStored() {
  expect(await t.storedFiles()).toEqual([]);
  expect(await allRecords(t.db)).toEqual([]);
}

describe.each(CATALOG_DATABASES)('files API (catalog on %s)', (kind) => {
  const database = useCatalogDatabase(kind);
  const build = async (env: Env = {}, existingDir?: string) => buildTestApp({ ...(await database.env()), ...env }, existingDir);

  describe('uploads and downloads round-trip', () => {
    beforeEach(async () => {
      t = await build();
    });

    it('stores several files from one form and streams each back byte for byte', async () => {
      const a = randomData(2 * 1024 * 1024 + 3);
      const b = Buffer.from('name,amount\nZoë,3\n');
      const res = await upload([
        { name: 'big.bin', data: a },
        { name: 'list.csv', data: b, type: 'text/csv' },
      ]);
      expect(res.status).toBe(201);
      expect(res.body.files).toHaveLength(2);
      const [fa, fb] = res.body.files;
      expect(fa).toMatchObject({ name: 'big.bin', size: a.length, sha256: sha256(a), status: 'ready', contentType: 'application/octet-stream' });
      expect(fb).toMatchObject({ name: 'list.csv', size: b.length, sha256: sha256(b), status: 'ready', contentType: 'text/csv' });
      expect(fa.id).toMatch(/^[0-9a-f]{32}$/);

      const down = await t.http().get(fa.links.content).buffer(true).parse(binary);
      expect(down.status).toBe(200);
      expect(sha256(down.body)).toBe(sha256(a));
      expect(down.headers['content-length']).toBe(String(a.length));
      expect(down.headers['etag']).toBe(`"${sha256(a)}"`);
      expect(down.headers['x-content-type-options']).toBe('nosniff');
      expect(down.headers['content-disposition']).toBe('attachment; filename=big.bin');

      const csv = await t.http().get(fb.links.content).buffer(true).parse(binary);
      expect(csv.headers['content-type']).toBe('text/csv');
      expect(csv.body.equals(b)).toBe(true);
      // Only the two blobs are on disk: no temp files left over.
      expect(await t.storedFiles()).toHaveLength(2);
    });

    it('returns a record by id, only to its owner', async () => {
      const { body } = await upload([{ name: 'a.txt', data: Buffer.from('a') }], 'alice');
      const id = body.files[0].id;
      const mine = await t.http('alice').get(`/v1/files/${id}`);
      expect(mine.status).toBe(200);
      expect(mine.body).toMatchObject({ id, name: 'a.txt', size: 1, status: 'ready' });
      for (const path of [`/v1/files/${id}`, `/v1/files/${id}/content`]) {
        const other = await t.http('bob').get(path);
        expect(other.status).toBe(404);
        expect(other.body.error.code).toBe('not_found');
      }
      expect((await t.http('bob').delete(`/v1/files/${id}`)).status).toBe(404);
    });

    it('encodes non-ASCII names in Content-Disposition (RFC 6266 / 5987), with an ASCII spelling in filename=', async () => {
      const { body } = await upload([{ name: 'résumé 2026 €.pdf', data: Buffer.from('%PDF'), type: 'application/pdf' }]);
      const res = await t.http().get(body.files[0].links.content);
      expect(res.headers['content-disposition']).toBe(
        `attachment; filename="resume 2026 EUR.pdf"; filename*=UTF-8''r%C3%A9sum%C3%A9%202026%20%E2%82%AC.pdf`,
      );
      expect(res.headers['content-type']).toBe('application/pdf');
    });

    it('serves byte ranges with 206 and refuses unsatisfiable ones with 416', async () => {
      const data = randomData(10_000);
      const { body } = await upload([{ name: 'r.bin', data }]);
      const url = body.files[0].links.content;

      const first = await t.http().get(url).set('Range', 'bytes=0-99').buffer(true).parse(binary);
      expect(first.status).toBe(206);
      expect(first.headers['content-range']).toBe('bytes 0-99/10000');
      expect(first.body.equals(data.subarray(0, 100))).toBe(true);

      const tail = await t.http().get(url).set('Range', 'bytes=-10').buffer(true).parse(binary);
      expect(tail.status).toBe(206);
      expect(tail.headers['content-range']).toBe('bytes 9990-9999/10000');
      expect(tail.body.equals(data.subarray(9990))).toBe(true);

      const open = await t.http().get(url).set('Range', 'bytes=9000-').buffer(true).parse(binary);
      expect(open.body.equals(data.subarray(9000))).toBe(true);

      const multi = await t.http().get(url).set('Range', 'bytes=0-1,5000-5001').buffer(true).parse(binary);
      expect(multi.status).toBe(200);
      expect(multi.body.length).toBe(10_000);

      const stale = await t.http().get(url).set('Range', 'bytes=0-1').set('If-Range', '"other"').buffer(true).parse(binary);
      expect(stale.status).toBe(200);

      const bad = await t.http().get(url).set('Range', 'bytes=20000-30000');
      expect(bad.status).toBe(416);
      expect(bad.headers['content-range']).toBe('bytes */10000');
      expect(bad.body.error.code).toBe('range_not_satisfiable');
    });

    it('answers If-None-Match with 304 and HEAD with headers only', async () => {
      const data = Buffer.from('cache me');
      const { body } = await upload([{ name: 'c.txt', data, type: 'text/plain' }]);
      const url = body.files[0].links.content;
      const etag = `"${sha256(data)}"`;
      const cached = await t.http().get(url).set('If-None-Match', etag);
      expect(cached.status).toBe(304);
      expect(cached.text).toBe('');
      expect((await t.http().get(url).set('If-None-Match', '"nope"')).status).toBe(200);

      const head = await t.http().head(url);
      expect(head.status).toBe(200);
      expect(head.headers['content-length']).toBe(String(data.length));
      expect(head.headers['etag']).toBe(etag);
      expect(head.headers['accept-ranges']).toBe('bytes');
      expect(head.text).toBeUndefined();
    });

    it('deletes the record and the blob; a second delete is 404', async () => {
      const { body } = await upload([{ name: 'd.txt', data: Buffer.from('bye') }]);
      const id = body.files[0].id;
      expect((await t.http().delete(`/v1/files/${id}`)).status).toBe(204);
      await expectNothingStored();
      const again = await t.http().delete(`/v1/files/${id}`);
      expect(again.status).toBe(404);
      expect(again.body.error.code).toBe('not_found');
      expect((await t.http().get(`/v1/files/${id}/content`)).status).toBe(404);
    });

    it('lists the owner’s files newest first, page by page', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const { body } = await upload([{ name: `f${i}.txt`, data: Buffer.from(String(i)) }], 'carol');
        ids.push(body.files[0].id);
      }
      await upload([{ name: 'other.txt', data: Buffer.from('x') }], 'dave');
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const res: request.Response = await t.http('carol')
          .get('/v1/files')
          .query(cursor ? { limit: 2, cursor } : { limit: 2 });
        expect(res.status).toBe(200);
        expect(res.body.files.length).toBeLessThanOrEqual(2);
        seen.push(...res.body.files.map((f: { id: string }) => f.id));
        cursor = res.body.nextCursor;
        pages++;
      } while (cursor);
      expect(pages).toBe(3);
      expect(seen).toEqual([...ids].reverse());

      expect((await t.http().get('/v1/files').query({ limit: 0 })).body.error.code).toBe('invalid_limit');
      expect((await t.http().get('/v1/files').query({ cursor: 'garbage' })).body.error.code).toBe('invalid_cursor');
    });

    it('answers 404 file_missing and marks the record missing when the blob is gone', async () => {
      const { body } = await upload([{ name: 'gone.txt', data: Buffer.from('soon gone') }]);
      const file = body.files[0];
      const [record] = await allRecords(t.db);
      await fsp.rm(path.join(t.config.storage.path, record.key));

      const res = await t.http().get(file.links.content);
      expect(res.status).toBe(404);
      expect(res.headers['content-disposition']).toBeUndefined();
      expect(res.body).toEqual({
        error: { code: 'file_missing', message: 'File missing from storage. Please re-upload it.', requestId: res.headers['x-request-id'] },
      });
      const after = await t.http().get(file.links.self);
      expect(after.body).toMatchObject({ status: 'missing', statusMessage: 'File missing from storage. Please re-upload it.' });
      const logged = t.logs.lines.find((l) => l.msg === 'file missing from storage');
      expect(logged).toMatchObject({ level: 50, fileId: file.id, key: record.key });
      expect((await t.http().head(file.links.content)).status).toBe(404);
    });

    it('keeps a caller’s X-Request-Id and echoes it in errors', async () => {
      const res = await t.http().get('/v1/files/nope').set('X-Request-Id', 'abc-123');
      expect(res.headers['x-request-id']).toBe('abc-123');
      expect(res.body).toEqual({ error: { code: 'not_found', message: 'No file with that id.', requestId: 'abc-123' } });
      const generated = await t.http().get('/v1/files/nope').set('X-Request-Id', 'bad id with spaces');
      expect(generated.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    });

    it('sanitizes names and never uses them as paths', async () => {
      const res = await upload([
        { name: '../../etc/passwd', data: Buffer.from('1') },
        { name: 'a\u202eb\tc.txt', data: Buffer.from('2') },
        { name: `${'x'.repeat(300)}.pdf`, data: Buffer.from('3') },
      ]);
      expect(res.status).toBe(201);
      const names = res.body.files.map((f: { name: string }) => f.name);
      expect(names[0]).toBe('passwd');
      expect(names[1]).toBe('abc.txt');
      expect(names[2]).toHaveLength(200);
      expect(names[2].endsWith('.pdf')).toBe(true);
      expect(res.body.files[0].originalName).toBe('passwd');
      const stored = await t.storedFiles();
      expect(stored.every((f) => /^files\/[0-9a-f]{2}\/[0-9a-f]{32}$/.test(f))).toBe(true);
    });
  });

  describe('bad uploads get a clear error and leave nothing behind', () => {
    async function expectError(res: request.Response, status: number, code: string) {
      expect(res.status).toBe(status);
      expect(res.body.error).toMatchObject({ code, requestId: res.headers['x-request-id'] });
      expect(typeof res.body.error.message).toBe('string');
      expect(JSON.stringify(res.body)).not.toMatch(/at .*\.(js|ts):\d+/);
      await expectNothingStored();
    }

    it('413 for a file over MAX_UPLOAD_BYTES, including the good file before it', async () => {
      t = await build({ MAX_UPLOAD_BYTES: '64kb' });
      const res = await upload([
        { name: 'ok.bin', data: randomData(1000) },
        { name: 'big.bin', data: randomData(200 * 1024) },
      ]);
      await expectError(res, 413, 'file_too_large');
      expect(res.body.error.message).toContain('65536 bytes (MAX_UPLOAD_BYTES)');
    });

    it('413 for more files than MAX_FILES_PER_REQUEST', async () => {
      t = await build({ MAX_FILES_PER_REQUEST: '2' });
      const files = [1, 2, 3].map((i) => ({ name: `${i}.txt`, data: randomData(50_000) }));
      await expectError(await upload(files), 413, 'too_many_files');
    });

    it('415 for a content type outside ALLOWED_CONTENT_TYPES', async () => {
      t = await build({ ALLOWED_CONTENT_TYPES: 'image/*,application/pdf' });
      const ok = await upload([{ name: 'p.png', data: Buffer.from('png'), type: 'image/png' }]);
      expect(ok.status).toBe(201);
      await t.http().delete(ok.body.files[0].links.self);
      const res = await upload([
        { name: 'p.pdf', data: Buffer.from('pdf'), type: 'application/pdf' },
        { name: 'x.exe', data: Buffer.from('MZ'), type: 'application/x-msdownload' },
      ]);
      await expectError(res, 415, 'unsupported_file_type');
    });

    it('415 when the body is not multipart', async () => {
      t = await build();
      await expectError(await t.http().post('/v1/files').send({ file: 'x' }), 415, 'multipart_required');
    });

    it('400 for malformed multipart', async () => {
      t = await build();
      const body = '--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nhalf a file';
      const res = await t.http().post('/v1/files').set('Content-Type', 'multipart/form-data; boundary=XyZ').send(body);
      await expectError(res, 400, 'malformed_multipart');
    });

    it('400 when the form has no file, or files under another field name', async () => {
      t = await build();
      await expectError(await t.http().post('/v1/files').field('note', 'hi'), 400, 'no_files');
      const res = await t.http().post('/v1/files').attach('document', Buffer.from('x'), 'x.txt');
      await expectError(res, 400, 'unexpected_field');
    });

    it('400 for an invalid X-Owner, 403 for another owner without a service key, 404 for unknown routes', async () => {
      t = await build();
      const service = t.withToken(await t.key('svc', 'service'));
      await expectError(await upload([{ name: 'a', data: Buffer.from('a') }], service.set('X-Owner', 'no spaces/allowed')), 400, 'invalid_owner');
      await expectError(await upload([{ name: 'a', data: Buffer.from('a') }], t.http('alice').set('X-Owner', 'bob')), 403, 'owner_not_allowed');
      await expectError(await t.http().get('/v2/anything'), 404, 'route_not_found');
    });

    it('507 when the memory store is full', async () => {
      t = await build({ STORAGE: 'memory', MEMORY_STORE_MAX_BYTES: '100kb' });
      const res = await upload([{ name: 'big', data: randomData(300 * 1024) }]);
      expect(res.status).toBe(507);
      expect(res.body.error.code).toBe('insufficient_storage');
      expect(await allRecords(t.db)).toEqual([]);
      expect((await t.store.list()).items).toEqual([]);
    });
  });

  describe('health', () => {
    it('is alive and ready, and not ready with the reason once the background check finds the store broken', async () => {
      t = await build({ STORE_CHECK_INTERVAL: '1s' });
      // Public: probes call these without credentials.
      expect((await request(t.app).get('/healthz')).body).toEqual({ status: 'ok' });
      expect((await request(t.app).get('/readyz')).body).toMatchObject({ status: 'ready', checks: { store: 'ok', database: 'ok' } });
      // Replace the store directory with a plain file: nothing can be written there any more.
      await fsp.rm(t.config.storage.path, { recursive: true });
      await fsp.writeFile(t.config.storage.path, 'not a directory');
      await t.logs.waitFor((l) => l.msg === 'store check failed');
      const res = await request(t.app).get('/readyz');
      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe('not_ready');
      expect(res.body.error.message).toBe('Not ready: store: unavailable. The log says why.');
      // Where the store is, is the operator's to know: the log has it, the answer doesn't.
      expect(JSON.stringify(res.body)).not.toContain(t.dir);
      const logged = await t.logs.waitFor((l) => l.msg === 'not ready');
      expect(JSON.stringify(logged)).toContain(t.config.storage.path);
    });
  });
});
