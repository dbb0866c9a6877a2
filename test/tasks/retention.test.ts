import { loadConfig } from '../../src/config';
import { configProblems } from '../helpers/config';
import type { Worker } from '../../src/tasks/worker';
import { buildTestApp, type TestApp } from '../helpers/app';

/** Finished tasks don't keep their inline rows, and go after TASK_RETENTION; their outputs stay. */

let t: TestApp;
let worker: Worker;
beforeEach(async () => {
  t = await buildTestApp();
  worker = t.startTaskWorker();
});
afterEach(async () => {
  await worker.stop(0);
  await t.close();
});

const columns = [
  { key: 'name', header: 'Name', type: 'string' },
  { key: 'qty', header: 'Qty', type: 'integer' },
];
const rows = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `customer number ${i} with a longish name`, qty: i }));

const payloadBytes = async () =>
  (await t.db.selectFrom('tasks').select('payload').execute()).reduce((sum, r) => sum + Buffer.byteLength(r.payload), 0);

it('drops inline rows from finished tasks, keeping what the task was, a row count and a digest', async () => {
  const body = { format: 'csv', title: 'Big inline', columns, rows: rows(20_000) };
  const requests = await Promise.all(Array.from({ length: 3 }, () => t.http().post('/v1/reports?wait=20').send(body)));
  for (const res of requests) expect(res.body.status).toBe('succeeded');
  const sent = Buffer.byteLength(JSON.stringify(body));
  expect(sent).toBeGreaterThan(1_000_000);
  expect(await payloadBytes()).toBeLessThan(3 * 2048);

  const row = await t.db.selectFrom('tasks').select('payload').where('id', '=', requests[0].body.id).executeTakeFirstOrThrow();
  const kept = JSON.parse(row.payload);
  expect(kept).toMatchObject({ kind: 'inline', format: 'csv', title: 'Big inline', compacted: { dropped: { rows: 20_000 } } });
  expect(kept.rows).toBeUndefined();
  expect(kept.compacted.bytes).toBeGreaterThan(1_000_000);
  expect(kept.compacted.sha256).toMatch(/^[0-9a-f]{64}$/);
  // The task still reads as before, and its output is whole.
  const task = await t.http().get(`/v1/tasks/${requests[0].body.id}`);
  expect(task.body).toMatchObject({ status: 'succeeded', outputs: [expect.objectContaining({ name: 'Big inline.csv' })] });
  const csv = await t.http().get(task.body.outputs[0].links.content);
  expect(csv.text.trim().split('\n')).toHaveLength(20_001);
});

it('keeps a small payload as it was', async () => {
  const res = await t.http().post('/v1/reports?wait=20').send({ format: 'csv', title: 'Small', columns, rows: rows(3) });
  expect(res.body.status).toBe('succeeded');
  const row = await t.db.selectFrom('tasks').select('payload').where('id', '=', res.body.id).executeTakeFirstOrThrow();
  expect(JSON.parse(row.payload)).toEqual({ kind: 'inline', format: 'csv', title: 'Small', columns, rows: rows(3), options: expect.anything() });
});

it('removes tasks finished before the retention cut-off, never queued or newer ones, and leaves their output files', async () => {
  const done = await t.http().post('/v1/reports?wait=20').send({ format: 'csv', title: 'Old', columns, rows: rows(2) });
  expect(done.body.status).toBe('succeeded');
  await worker.stop(0);
  const queued = await t.http().post('/v1/reports').send({ format: 'csv', title: 'Waiting', columns, rows: rows(2) });
  const longAgo = new Date(Date.now() - 31 * 86_400_000).toISOString();
  await t.db.updateTable('tasks').set({ finished_at: longAgo }).where('id', '=', done.body.id).execute();

  expect(await t.queue.pruneFinished(new Date(Date.now() - 30 * 86_400_000))).toBe(1);
  expect((await t.http().get(`/v1/tasks/${done.body.id}`)).status).toBe(404);
  expect((await t.http().get(`/v1/tasks/${queued.body.id}`)).body.status).toBe('queued');
  expect((await t.http().get(done.body.outputs[0].links.content)).status).toBe(200);
});

it('TASK_RETENTION defaults to 30 days and takes a duration of at least an hour', () => {
  expect(loadConfig({}, '/srv').tasks.retentionMs).toBe(30 * 86_400_000);
  expect(loadConfig({ TASK_RETENTION: '7d' }, '/srv').tasks.retentionMs).toBe(7 * 86_400_000);
  expect(configProblems({ TASK_RETENTION: '10m' }, '/srv')).toEqual(['TASK_RETENTION: "10m" must be a duration of at least 1h (e.g. 30d)']);
});
