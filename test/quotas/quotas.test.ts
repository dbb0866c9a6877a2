import fsp from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { allRecords, buildTestApp, type TestApp } from '../helpers/app';
import { CATALOG_DATABASES, useCatalogDatabase } from '../helpers/postgres';
import { listFilesDeep } from '../helpers/tmp';
import { form } from '../helpers/multipart';
import { randomData } from '../helpers/streams';

let t: TestApp;
afterEach(async () => t?.close());

function upload(owner: string, files: { name: string; data: Buffer }[]) {
  const { body, type } = form(files);
  return t.http(owner).post('/v1/files').set('Content-Type', type).send(body);
}

/** The blobs in the volume (not temp files, not the tus directory), with their sizes. */
async function blobs(): Promise<{ file: string; size: number }[]> {
  const root = path.join(t.dir, 'files');
  const files = (await listFilesDeep(root)).filter((f) => !f.startsWith('.'));
  return Promise.all(files.map(async (file) => ({ file, size: (await fsp.stat(path.join(root, file))).size })));
}

/** Sends a form as a chunked body (no Content-Length): its size is unknown until it ends. */
async function uploadChunked(token: string, files: { name: string; data: Buffer }[]): Promise<{ status: number; body: any }> {
  const server = http.createServer(t.app).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const { port } = server.address() as AddressInfo;
  const { body, type } = form(files);
  try {
    return await new Promise((resolve, reject) => {
      const req = http.request({ port, host: '127.0.0.1', method: 'POST', path: '/v1/files', headers: { 'Content-Type': type, Authorization: `Bearer ${token}`, 'Transfer-Encoding': 'chunked' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(Buffer.concat(chunks).toString()) }));
      });
      req.on('error', reject);
      // In pieces, as a client streaming a file of unknown size would.
      for (let at = 0; at < body.length; at += 16 * 1024) req.write(body.subarray(at, at + 16 * 1024));
      req.end();
    });
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

describe.each(CATALOG_DATABASES)('quotas (catalog on %s)', (kind) => {
  const database = useCatalogDatabase(kind);
  const build = async (env: Record<string, string>) => {
    t = await buildTestApp({ ...(await database.env()), UPLOADS_PER_CLIENT: '64', ...env });
  };

  it('refuses an upload past the quota with 413 quota_exceeded, keeping nothing of it', async () => {
    await build({ QUOTA_BYTES: '10000' });
    expect((await upload('alice', [{ name: 'a.bin', data: randomData(6000) }])).status).toBe(201);
    const res = await upload('alice', [{ name: 'b.bin', data: randomData(6000) }]);
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('quota_exceeded');
    expect(res.body.error.message).toMatch(/6000 of 10000 bytes are used/);
    expect((await blobs()).map((b) => b.size)).toEqual([6000]);
    expect((await allRecords(t.db)).map((r) => r.name)).toEqual(['a.bin']);
    // Other owners have quotas of their own.
    expect((await upload('bob', [{ name: 'c.bin', data: randomData(6000) }])).status).toBe(201);
  });

  it('cuts off an upload of unknown size (chunked) once it outgrows the quota, keeping nothing of it', async () => {
    await build({ QUOTA_BYTES: '100kb' });
    const token = await t.key('alice');
    const res = await uploadChunked(token, [{ name: 'small.bin', data: randomData(40_000) }, { name: 'big.bin', data: randomData(80_000) }]);
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('quota_exceeded');
    expect(await blobs()).toEqual([]);
    expect(await allRecords(t.db)).toEqual([]);
    const fits = await uploadChunked(token, [{ name: 'small.bin', data: randomData(40_000) }, { name: 'fits.bin', data: randomData(50_000) }]);
    expect(fits.status).toBe(201);
    expect((await blobs()).map((b) => b.size).sort()).toEqual([40_000, 50_000]);
  });

  it('lets exactly as many of 20 concurrent uploads through as the quota holds', async () => {
    const size = 10_000;
    // A request reserves its whole length (the form's framing too, under 300 bytes here): ten
    // fit whatever the order, an eleventh file never does.
    await build({ QUOTA_BYTES: String(10 * size + 5000) });
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => upload('alice', [{ name: `f${i}.bin`, data: randomData(size) }])));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 201)).toHaveLength(10);
    expect(statuses.filter((s) => s === 413)).toHaveLength(10);
    expect(results.filter((r) => r.status === 413).every((r) => r.body.error.code === 'quota_exceeded')).toBe(true);
    expect((await blobs()).map((b) => b.size)).toEqual(Array(10).fill(size));
    const records = await allRecords(t.db);
    expect(records.map((r) => [r.status, Number(r.size)])).toEqual(Array(10).fill(['ready', size]));
  });

  it('limits the number of files (QUOTA_FILES), a request with several counting each', async () => {
    await build({ QUOTA_FILES: '3' });
    expect((await upload('alice', [{ name: 'a', data: randomData(10) }, { name: 'b', data: randomData(10) }])).status).toBe(201);
    const res = await upload('alice', [{ name: 'c', data: randomData(10) }, { name: 'd', data: randomData(10) }]);
    expect(res.status).toBe(413);
    expect(res.body.error.message).toMatch(/3 of 3 files/);
    expect((await allRecords(t.db)).map((r) => r.name).sort()).toEqual(['a', 'b']);
    expect((await blobs())).toHaveLength(2);
  });

  it("an owner's own quota (stowage quotas set) replaces the default; deleting a file makes room", async () => {
    await build({ QUOTA_BYTES: '1mb' });
    await t.resources.quotas.overrides.set('alice', { maxBytes: 5000 });
    const first = await upload('alice', [{ name: 'a', data: randomData(4000) }]);
    expect(first.status).toBe(201);
    expect((await upload('alice', [{ name: 'b', data: randomData(4000) }])).body.error.code).toBe('quota_exceeded');
    expect((await upload('bob', [{ name: 'b', data: randomData(100_000) }])).status).toBe(201);
    expect((await t.http('alice').delete(`/v1/files/${first.body.files[0].id}`)).status).toBe(204);
    expect((await upload('alice', [{ name: 'b', data: randomData(4000) }])).status).toBe(201);
  });

  it('GET /v1/usage gives the sizes of the blobs stored, per store, and the quota', async () => {
    await build({ QUOTA_BYTES: '1mb', QUOTA_FILES: '100' });
    await upload('alice', [{ name: 'a', data: randomData(1234) }, { name: 'b', data: randomData(5678) }]);
    await upload('alice', [{ name: 'c', data: randomData(99) }]);
    await upload('bob', [{ name: 'd', data: randomData(4321) }]);
    const stored = await blobs();
    const alice = (await t.http('alice').get('/v1/usage')).body;
    expect(alice).toEqual({
      bytes: 1234 + 5678 + 99,
      files: 3,
      reserved: { bytes: 0, files: 0 },
      quota: { bytes: 1024 ** 2, files: 100 },
      stores: { volume: { bytes: 1234 + 5678 + 99, files: 3 } },
    });
    const bob = (await t.http('bob').get('/v1/usage')).body;
    expect(alice.bytes + bob.bytes).toBe(stored.reduce((sum, b) => sum + b.size, 0));
    expect((await t.http('carol').get('/v1/usage')).body).toMatchObject({ bytes: 0, files: 0, stores: {} });
  });

  it('fails a report whose output would go past the quota with quota_exceeded, keeping no output', async () => {
    await build({ QUOTA_BYTES: '2kb' });
    const worker = t.startTaskWorker();
    try {
      const rows = Array.from({ length: 200 }, (_, i) => ({ name: `row ${i}`, qty: i }));
      const res = await t
        .http('alice')
        .post('/v1/reports?wait=20')
        .send({ format: 'csv', title: 'Big', columns: [{ key: 'name', header: 'Name', type: 'string' }, { key: 'qty', header: 'Qty', type: 'integer' }], rows });
      expect(res.body).toMatchObject({ status: 'failed', error: { code: 'quota_exceeded' }, attempts: 1 });
      expect(await allRecords(t.db)).toEqual([]);
      expect(await blobs()).toEqual([]);
    } finally {
      await worker.stop(1000);
    }
  });
});
