import fsp from 'node:fs/promises';
import path from 'node:path';
import request from 'supertest';
import { createApp } from '../../src/app';
import { PeriodicDoctor } from '../../src/doctor/periodic';
import { doctorDeps } from '../../src/resources';
import { ServiceMetrics } from '../../src/metrics/metrics';
import { allRecords, buildTestApp, type TestApp } from '../helpers/app';
import { parsePrometheus } from '../helpers/prometheus';
import { randomData } from '../helpers/streams';

let t: TestApp;
afterEach(async () => t?.close());

async function scrape(app: TestApp['app'], token?: string) {
  let req = request(app).get('/metrics');
  if (token) req = req.set('Authorization', `Bearer ${token}`);
  const res = await req;
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePrometheus(res.text);
}

describe('GET /metrics', () => {
  it('is Prometheus text whose upload, download, byte and latency counters move after an upload and a download', async () => {
    t = await buildTestApp();
    const before = await scrape(t.app);
    // Process metrics come with it.
    expect(before.get('process_cpu_user_seconds_total')).toBeGreaterThanOrEqual(0);
    expect(before.get('stowage_uploads_total{outcome="stored"}') ?? 0).toBe(0);

    const data = randomData(300_000);
    const up = await request(t.app).post('/v1/files').attach('file', data, 'data.bin');
    expect(up.status).toBe(201);
    const { id } = up.body.files[0];
    expect((await request(t.app).get(`/v1/files/${id}/content`)).status).toBe(200);
    expect((await request(t.app).get(`/v1/files/${id}/content`).set('Range', 'bytes=0-99')).status).toBe(206);
    expect((await request(t.app).get('/v1/files/0123456789abcdef0123456789abcdef/content')).status).toBe(404);
    expect((await request(t.app).post('/v1/files').send('not a form')).status).toBe(415);

    const after = await scrape(t.app);
    expect(after.get('stowage_uploads_total{outcome="stored"}')).toBe(1);
    expect(after.get('stowage_uploads_total{outcome="multipart_required"}')).toBe(1);
    expect(after.get('stowage_upload_bytes_total')).toBe(data.length);
    expect(after.get('stowage_downloads_total{outcome="full"}')).toBe(1);
    expect(after.get('stowage_downloads_total{outcome="partial"}')).toBe(1);
    expect(after.get('stowage_downloads_total{outcome="not_found"}')).toBe(1);
    expect(after.get('stowage_download_bytes_total')).toBe(data.length + 100);
    expect(after.get('stowage_http_request_duration_seconds_count{method="POST",route="/v1/files",status="201"}')).toBe(1);
    // Latency is labelled by route pattern, even for error answers, never by raw URL.
    expect(after.get('stowage_http_request_duration_seconds_count{method="GET",route="/v1/files/:id/content",status="200"}')).toBe(1);
    expect(after.get('stowage_http_request_duration_seconds_count{method="GET",route="/v1/files/:id/content",status="404"}')).toBe(1);
    expect([...after.keys()].filter((k) => k.includes(id))).toEqual([]);
  });

  it('requires the bearer token when METRICS_TOKEN is set, answering 401 in the one error shape', async () => {
    const token = 'metrics-token-0123456789abcdef';
    t = await buildTestApp({ METRICS_TOKEN: token });
    for (const auth of [undefined, 'Bearer wrong-token', `Basic ${token}`]) {
      let req = request(t.app).get('/metrics');
      if (auth) req = req.set('Authorization', auth);
      const res = await req;
      expect(res.status).toBe(401);
      expect(res.body).toEqual({
        error: { code: 'unauthorized', message: 'GET /metrics needs Authorization: Bearer <METRICS_TOKEN>.', requestId: expect.any(String) },
      });
      expect(res.text).not.toMatch(/stowage_|at \//);
    }
    expect((await scrape(t.app, token)).get('stowage_upload_bytes_total')).toBe(0);
  });

  it('shows the missing and orphan counts of the last periodic doctor run', async () => {
    t = await buildTestApp();
    const metrics = new ServiceMetrics();
    const app = createApp({ config: t.config, resources: t.resources, log: t.logs.log, metrics });
    expect((await request(app).post('/v1/files').attach('file', Buffer.from('soon gone'), 'a.txt')).status).toBe(201);
    const [record] = await allRecords(t.db);
    await fsp.rm(path.join(t.config.storage.path, ...record.key.split('/')));
    const orphan = path.join(t.config.storage.path, 'or', 'phan');
    await fsp.mkdir(path.dirname(orphan));
    await fsp.writeFile(orphan, 'x');
    const old = new Date(Date.now() - 2 * 60 * 60 * 1000);
    await fsp.utimes(orphan, old, old);

    const doctor = new PeriodicDoctor(
      doctorDeps(t.resources, t.config, t.logs.log),
      { intervalMs: 5, graceMs: 60 * 60 * 1000, onReport: (r) => metrics.doctorRun(r) },
    );
    const report = doctor.nextReport();
    doctor.start();
    expect((await report).problems.map((p) => p.kind).sort()).toEqual(['missing', 'orphan']);
    await doctor.stop();
    // Report only: the periodic run never changes a record.
    expect((await allRecords(t.db))[0].status).toBe('ready');

    const samples = await scrape(app);
    expect(samples.get('stowage_doctor_problems{kind="missing"}')).toBe(1);
    expect(samples.get('stowage_doctor_problems{kind="orphan"}')).toBe(1);
    expect(samples.get('stowage_doctor_problems{kind="corrupt"}')).toBe(0);
    expect(samples.get('stowage_doctor_records_checked')).toBe(1);
    expect(samples.get('stowage_doctor_last_run_timestamp_seconds')).toBeGreaterThan(0);
    await t.logs.waitFor((l) => l.event === 'doctor.run' && l.level === 40);
  });
});
