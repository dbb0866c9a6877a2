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

/** GET /metrics with `token`: METRICS_TOKEN or a service key. */
async function scrape(app: TestApp['app'], token: string) {
  const res = await request(app).get('/metrics').set('Authorization', `Bearer ${token}`);
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePrometheus(res.text);
}

describe('GET /metrics', () => {
  it('is Prometheus text whose upload, download, byte and latency counters move after an upload and a download', async () => {
    t = await buildTestApp();
    const service = await t.key('ops', 'service');
    const before = await scrape(t.app, service);
    // Process metrics come with it.
    expect(before.get('process_cpu_user_seconds_total')).toBeGreaterThanOrEqual(0);
    expect(before.get('stowage_uploads_total{outcome="stored"}') ?? 0).toBe(0);

    const data = randomData(300_000);
    const up = await t.http().post('/v1/files').attach('file', data, 'data.bin');
    expect(up.status).toBe(201);
    const { id } = up.body.files[0];
    expect((await t.http().get(`/v1/files/${id}/content`)).status).toBe(200);
    expect((await t.http().get(`/v1/files/${id}/content`).set('Range', 'bytes=0-99')).status).toBe(206);
    expect((await t.http().get('/v1/files/0123456789abcdef0123456789abcdef/content')).status).toBe(404);
    expect((await t.http().post('/v1/files').send('not a form')).status).toBe(415);
    // Multer's limits are counted under the codes the client was told, not multer's own names.
    const wrongField = await t.http().post('/v1/files').attach('document', Buffer.from('x'), 'x.txt');
    expect(wrongField.body.error.code).toBe('unexpected_field');
    const tooMany = t.http().post('/v1/files');
    for (let i = 0; i <= t.config.uploads.maxFiles; i++) tooMany.attach('file', Buffer.from(`file ${i}`), `f${i}.txt`);
    expect((await tooMany).body.error.code).toBe('too_many_files');

    const after = await scrape(t.app, service);
    expect(after.get('stowage_uploads_total{outcome="stored"}')).toBe(1);
    expect(after.get('stowage_uploads_total{outcome="multipart_required"}')).toBe(1);
    expect(after.get('stowage_uploads_total{outcome="unexpected_field"}')).toBe(1);
    expect(after.get('stowage_uploads_total{outcome="too_many_files"}')).toBe(1);
    expect([...after.keys()].filter((k) => k.includes('outcome="limit_'))).toEqual([]);
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

  it('requires METRICS_TOKEN or a service key, answering 401 and 403 in the one error shape', async () => {
    const token = 'metrics-token-0123456789abcdef';
    t = await buildTestApp({ METRICS_TOKEN: token });
    const refused: [string | undefined, number, string, string, string][] = [
      [undefined, 401, 'unauthenticated', 'This needs credentials: Authorization: Bearer <API key or token>.', 'Bearer'],
      ['Bearer wrong-token', 401, 'token_invalid', 'The token is not an API key stowage knows or a JWT it accepts.', 'Bearer error="invalid_token"'],
      [`Basic ${token}`, 401, 'token_invalid', 'Send credentials as Authorization: Bearer <token>.', 'Bearer error="invalid_token"'],
      [`Bearer ${await t.key('anonymous', 'write')}`, 403, 'insufficient_scope', 'GET /metrics needs METRICS_TOKEN or a service key.', 'Bearer error="insufficient_scope"'],
    ];
    for (const [auth, status, code, message, challenge] of refused) {
      let req = request(t.app).get('/metrics');
      if (auth) req = req.set('Authorization', auth);
      const res = await req;
      expect(res.status).toBe(status);
      expect(res.headers['www-authenticate']).toBe(challenge);
      expect(res.body).toEqual({ error: { code, message, requestId: expect.any(String) } });
      expect(res.text).not.toMatch(/stowage_|at \//);
    }
    expect((await scrape(t.app, token)).get('stowage_upload_bytes_total')).toBe(0);
    expect((await scrape(t.app, await t.key('ops', 'service'))).get('stowage_upload_bytes_total')).toBe(0);
  });

  it('shows the missing, orphan and leftover counts of the last periodic doctor run', async () => {
    t = await buildTestApp();
    const metrics = new ServiceMetrics();
    const app = createApp({ config: t.config, resources: t.resources, log: t.logs.log, metrics });
    const key = await t.key('anonymous');
    expect((await request(app).post('/v1/files').set('Authorization', `Bearer ${key}`).attach('file', Buffer.from('soon gone'), 'a.txt')).status).toBe(201);
    const [record] = await allRecords(t.db);
    await fsp.rm(path.join(t.config.storage.path, ...record.key.split('/')));
    const orphan = path.join(t.config.storage.path, 'or', 'phan');
    await fsp.mkdir(path.dirname(orphan));
    await fsp.writeFile(orphan, 'x');
    const old = new Date(Date.now() - 2 * 60 * 60 * 1000);
    await fsp.utimes(orphan, old, old);
    // A temp file of an upload whose process is gone (no such instance is registered).
    await fsp.writeFile(path.join(t.config.storage.path, '.tmp', 'crashed.4242.0123abcd.upload.part'), Buffer.alloc(3000));

    const doctor = new PeriodicDoctor(
      doctorDeps(t.resources, t.config, t.logs.log),
      { intervalMs: 5, graceMs: 60 * 60 * 1000, onReport: (r) => metrics.doctorRun(r) },
    );
    const report = doctor.nextReport();
    doctor.start();
    expect((await report).problems.map((p) => p.kind).sort()).toEqual(['missing', 'orphan', 'temp_leftover']);
    await doctor.stop();
    // Report only: the periodic run never changes a record.
    expect((await allRecords(t.db))[0].status).toBe('ready');

    const samples = await scrape(app, await t.key('ops', 'service'));
    expect(samples.get('stowage_doctor_problems{kind="missing"}')).toBe(1);
    expect(samples.get('stowage_doctor_problems{kind="orphan"}')).toBe(1);
    expect(samples.get('stowage_doctor_problems{kind="corrupt"}')).toBe(0);
    expect(samples.get('stowage_doctor_problems{kind="temp_leftover"}')).toBe(1);
    expect(samples.get('stowage_doctor_problems{kind="source_leftover"}')).toBe(0);
    expect(samples.get('stowage_doctor_records_checked')).toBe(1);
    expect(samples.get('stowage_doctor_last_run_timestamp_seconds')).toBeGreaterThan(0);
    await t.logs.waitFor((l) => l.event === 'doctor.run' && l.level === 40);
  });
});
