import request from 'supertest';
import { SILENT_AFTER_MS } from '../../src/catalog/instances';
import { newInstance } from '../../src/instance';
import { TaskQueue } from '../../src/tasks/queue';
import { REPORT_TASK } from '../../src/tasks/report-task';
import { waitForTask } from '../../src/tasks/wait';
import { buildTestApp, type TestApp } from '../helpers/app';
import { CATALOG_DATABASES, useCatalogDatabase } from '../helpers/postgres';

/**
 * A task queued where no worker can run it says so (`waiting`), and so does `/readyz`, instead of
 * waiting in silence. Processes on other hosts are their rows in the catalog (one catalog, several
 * hosts): a worker is counted while its heartbeat is recent. The same with real processes, a
 * `serve` with WORKERS=0 and a `stowage worker`: test/tasks/no-worker.test.ts.
 */

const NO_WORKER = 'no worker is running';
const REPORT = { format: 'csv', title: 'Sums', columns: [{ key: 'a', header: 'A', type: 'integer' }], rows: [{ a: 1 }] };

describe.each(CATALOG_DATABASES)('a task no worker can run (catalog on %s)', (kind) => {
  const database = useCatalogDatabase(kind);
  let t: TestApp;
  afterEach(() => t?.close());

  const ago = (ms: number) => new Date(Date.now() - ms);
  /** A process on another host whose workers run 2 task slots, last heard from at `lastSeen`. */
  async function otherWorker({ lastSeen = new Date(), machineId = null as string | null } = {}): Promise<string> {
    const id = newInstance('elsewhere').id.replace(/\.\d+\./, '.4242.');
    await t.db
      .insertInto('instances')
      .values({ id, host: 'elsewhere|boot|ns', pid: 4242, started_at: ago(60_000).toISOString(), last_seen: lastSeen.toISOString(), task_slots: 2, machine_id: machineId })
      .execute();
    return id;
  }
  const task = async (id: string) => (await t.http().get(`/v1/tasks/${id}`)).body;

  it('says "no worker is running" on the task, the list and a ?wait that returns at once; a worker runs it and the word goes', async () => {
    t = await buildTestApp(await database.env());
    const asked = Date.now();
    const queued = await t.http().post('/v1/reports?wait=20').send(REPORT);
    const took = Date.now() - asked;
    expect(queued.status).toBe(202);
    expect(queued.body).toMatchObject({ status: 'queued', waiting: NO_WORKER });
    // Waiting out the 20 s would change nothing: the answer came at once.
    expect(took).toBeLessThan(3000);
    expect(await task(queued.body.id)).toMatchObject({ status: 'queued', waiting: NO_WORKER });
    expect((await t.http().get('/v1/tasks')).body.tasks).toEqual([expect.objectContaining({ id: queued.body.id, waiting: NO_WORKER })]);
    const ready = await request(t.app).get('/readyz');
    // Reported, not failed: this instance serves everything else.
    expect(ready.status).toBe(200);
    expect(ready.body.checks.workers).toBe('none');
    expect(ready.body.message).toMatch(/^No task worker is running: .* Run `stowage worker` on this catalog, or set WORKERS to 1 or more\.$/);

    const worker = t.startTaskWorker();
    expect((await waitForTask(t.queue, 'anonymous', queued.body.id, 20_000))?.status).toBe('succeeded');
    const done = await task(queued.body.id);
    expect(done.status).toBe('succeeded');
    expect(done).not.toHaveProperty('waiting');
    const next = await t.http().post('/v1/reports?wait=20').send(REPORT);
    expect(next.status).toBe(201);
    expect(next.body).not.toHaveProperty('waiting');
    const running = await request(t.app).get('/readyz');
    expect(running.body.checks.workers).toBe('ok');
    expect(running.body).not.toHaveProperty('message');

    // A worker that stops cleanly is no longer counted, at once.
    await worker.stop(5000);
    expect((await request(t.app).get('/readyz')).body.checks.workers).toBe('none');
    expect((await t.http().post('/v1/reports?wait=20').send(REPORT)).body.waiting).toBe(NO_WORKER);
  });

  it('counts a worker on another host while its heartbeat is recent, and not once it has been silent', async () => {
    t = await buildTestApp(await database.env());
    const worker = await otherWorker();
    const { id } = (await t.http().post('/v1/reports').send(REPORT)).body;
    expect(await task(id)).not.toHaveProperty('waiting');
    expect((await request(t.app).get('/readyz')).body.checks.workers).toBe('ok');
    // The same row judged later, by the clock: four heartbeats missed.
    expect(await t.resources.instances.workersFor(null, new Date(Date.now() + SILENT_AFTER_MS + 1000))).toBe(false);
    // And as it stands when that process went quiet that long ago.
    await t.db.updateTable('instances').set({ last_seen: ago(SILENT_AFTER_MS + 1000).toISOString() }).where('id', '=', worker).execute();
    expect((await task(id)).waiting).toBe(NO_WORKER);
    expect((await request(t.app).get('/readyz')).body.checks.workers).toBe('none');
  });

  it('a running task whose worker vanished (its lease ran out) waits too', async () => {
    t = await buildTestApp(await database.env());
    const { id } = (await t.http().post('/v1/reports').send(REPORT)).body;
    // Claimed by a worker that then died without a word: its lease ran out a minute ago. (A 1 ms
    // lease could still hold when the task was read within the same millisecond or the next.)
    const claimed = await new TaskQueue(t.db).claim('lost-worker', [REPORT_TASK], 60_000);
    expect(claimed?.id).toBe(id);
    await t.db.updateTable('tasks').set({ running_until: ago(60_000).toISOString() }).where('id', '=', id).execute();
    expect(await task(id)).toMatchObject({ status: 'running', waiting: NO_WORKER });
    // A worker elsewhere will take it over.
    await otherWorker();
    expect(await task(id)).not.toHaveProperty('waiting');
  });

  it('a task pinned to a Fly Machine waits while no worker runs on that Machine, whatever runs elsewhere', async () => {
    t = await buildTestApp({ ...(await database.env()), FLY_MACHINE_ID: 'machine-a' });
    await otherWorker({ machineId: 'machine-b' });
    const onA = await t.queue.enqueue(REPORT_TASK, 'anonymous', REPORT, { machineId: 'machine-a' });
    const onB = await t.queue.enqueue(REPORT_TASK, 'anonymous', REPORT, { machineId: 'machine-b' });
    const anywhere = await t.queue.enqueue(REPORT_TASK, 'anonymous', REPORT);
    expect((await task(onA.id)).waiting).toBe(NO_WORKER);
    expect(await task(onB.id)).not.toHaveProperty('waiting');
    expect(await task(anywhere.id)).not.toHaveProperty('waiting');
    const ready = await request(t.app).get('/readyz');
    expect(ready.body.checks.workers).toBe('none');
    expect(ready.body.message).toContain('for this Fly Machine (machine-a)');

    await otherWorker({ machineId: 'machine-a' });
    expect(await task(onA.id)).not.toHaveProperty('waiting');
    expect((await request(t.app).get('/readyz')).body.checks.workers).toBe('ok');
  });
});
