import fsp from 'node:fs/promises';
import path from 'node:path';
import request from 'supertest';
import { allRecords, buildTestApp, type TestApp } from '../helpers/app';
import { parsePrometheus } from '../helpers/prometheus';
import { binary, randomData, sha256 } from '../helpers/streams';

/**
 * Small files (up to 64 KiB) are read from a volume or memory store into one buffer and sent
 * whole; larger ones are streamed. Either way a client gets the same bytes, headers and counts.
 */

let t: TestApp;
afterEach(async () => t?.close());

const SIZES = [0, 1, 16 * 1024, 64 * 1024, 64 * 1024 + 1, 300_000];

describe.each(['volume', 'memory'])('downloads from the %s store, either side of 64 KiB', (storage) => {
  it('sends every size whole and in ranges with the same headers, and counts each download and its bytes', async () => {
    t = await buildTestApp({ STORAGE: storage });
    let bytes = 0;
    for (const size of SIZES) {
      const data = randomData(size);
      const up = await t.http().post('/v1/files').attach('file', data, `f-${size}.bin`);
      expect(up.status).toBe(201);
      const { id } = up.body.files[0];

      const whole = await t.http().get(`/v1/files/${id}/content`).buffer(true).parse(binary);
      expect(whole.status).toBe(200);
      expect(whole.headers).toMatchObject({ 'content-length': String(size), etag: `"${sha256(data)}"`, 'content-security-policy': 'sandbox', 'accept-ranges': 'bytes' });
      expect(sha256(whole.body)).toBe(sha256(data));
      bytes += size;
      if (size < 2) continue;

      const [start, end] = [Math.floor(size / 3), size - 2];
      const part = await t.http().get(`/v1/files/${id}/content`).set('Range', `bytes=${start}-${end}`).buffer(true).parse(binary);
      expect(part.status).toBe(206);
      expect(part.headers['content-range']).toBe(`bytes ${start}-${end}/${size}`);
      expect(part.body).toEqual(data.subarray(start, end + 1));
      bytes += end - start + 1;
    }

    const metrics = await request(t.app).get('/metrics').set('Authorization', `Bearer ${await t.key('ops', 'service')}`);
    const after = parsePrometheus(metrics.text);
    expect(after.get('stowage_downloads_total{outcome="full"}')).toBe(SIZES.length);
    expect(after.get('stowage_downloads_total{outcome="partial"}')).toBe(SIZES.filter((s) => s >= 2).length);
    expect(after.get('stowage_download_bytes_total')).toBe(bytes);
  });
});

it('answers a small file whose blob on the volume is shorter than its record with a 500 in the error shape, not a short body', async () => {
  t = await buildTestApp();
  const data = randomData(10_000);
  const up = await t.http().post('/v1/files').attach('file', data, 'cut.bin');
  const { id } = up.body.files[0];
  const [record] = await allRecords(t.db);
  await fsp.truncate(path.join(t.config.storage.path, ...record.key.split('/')), 4000);

  const res = await t.http().get(`/v1/files/${id}/content`);
  expect(res.status).toBe(500);
  expect(res.body).toEqual({ error: { code: 'internal_error', message: expect.any(String), requestId: expect.any(String) } });
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  expect(JSON.stringify(res.body)).not.toContain(t.config.storage.path);
  const logged = await t.logs.waitFor((l) => l.level === 50 && JSON.stringify(l).includes('ends before byte 10000'));
  expect(logged).toBeDefined();
  // The record is left for `stowage doctor` to report as corrupt, not marked missing.
  expect((await t.http().get(`/v1/files/${id}`)).body.status).toBe('ready');
});
