import { once } from 'node:events';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { runChecks } from '../../src/doctor/doctor';
import { doctorDeps } from '../../src/resources';
import type { Worker } from '../../src/tasks/worker';
import { allRecords, buildTestApp, type TestApp } from '../helpers/app';
import { CATALOG_DATABASES, useCatalogDatabase } from '../helpers/postgres';
import { deliveriesWhen, Receiver, testSecret } from './receiver';

/**
 * Webhooks end to end: real uploads, reports and deletes through the API, a real worker making
 * the deliveries, and a receiver on 127.0.0.1 that verifies every request with the
 * `standardwebhooks` package, as an app would.
 */
describe.each(CATALOG_DATABASES)('webhooks on %s', (kind) => {
  const catalog = useCatalogDatabase(kind);
  let t: TestApp | undefined;
  let worker: Worker | undefined;
  const receivers: Receiver[] = [];

  afterEach(async () => {
    await worker?.stop(0);
    worker = undefined;
    await t?.close();
    t = undefined;
    await Promise.all(receivers.splice(0).map((r) => r.stop()));
  });

  async function receiver(fill = 'a'): Promise<Receiver> {
    const r = new Receiver(testSecret(fill));
    await r.start();
    receivers.push(r);
    return r;
  }

  async function app(r: Receiver, env: Record<string, string> = {}): Promise<TestApp> {
    t = await buildTestApp({ ...(await catalog.env()), WEBHOOK_URL: r.url, WEBHOOK_SECRET: r.secret, WEBHOOK_RETRY_DELAY: '20ms', ...env });
    return t;
  }

  async function upload(owner: string, name: string, data = 'some bytes'): Promise<string> {
    const res = await t!.http(owner).post('/v1/files').attach('file', Buffer.from(data), { filename: name, contentType: 'text/csv' });
    expect(res.status).toBe(201);
    return res.body.files[0].id as string;
  }

  /** Deliveries not finished yet, any owner. */
  async function undelivered(): Promise<number> {
    const rows = await t!.db.selectFrom('tasks').select('id').where('kind', '=', 'webhook').where('status', 'in', ['queued', 'running']).execute();
    return rows.length;
  }

  /** Resolves once no delivery is queued or running (checked again at each change of a task). */
  async function settled(): Promise<void> {
    for (;;) {
      const changed = once(t!.queue.events, 'changed');
      if ((await undelivered()) === 0) return;
      await changed;
    }
  }

  it('answers 500 twice then 200: three signed attempts of one event, processed once; each attempt logged without the secret', async () => {
    const r = await receiver();
    r.answers.push(
      (_req, res) => res.writeHead(500).end('oops'),
      (_req, res) => res.writeHead(500).end('oops'),
    );
    await app(r);
    worker = t!.startTaskWorker();
    const id = await upload('alice', 'report.csv', 'a,b\n1,2\n');
    await r.waitForEvents(1);

    expect(r.rejected).toEqual([]);
    expect(r.attempts.map((a) => a.id)).toEqual([r.events[0].id, r.events[0].id, r.events[0].id]);
    expect(r.events).toEqual([
      expect.objectContaining({ type: 'file.ready', data: expect.objectContaining({ id, owner: 'alice', name: 'report.csv', size: 8, status: 'ready' }) }),
    ]);
    const listed = await deliveriesWhen(t!, 'alice', (ds) => ds.every((d) => d.status !== 'pending'));
    expect(listed).toEqual([
      expect.objectContaining({ eventId: r.events[0].id, type: 'file.ready', endpoint: 'default', status: 'delivered', attempts: 3, lastError: null }),
    ]);
    // A service key sees its X-Owner's deliveries.
    const service = t!.withToken(await t!.key('ops', 'service'));
    expect((await service.get('/v1/webhooks/deliveries').set('X-Owner', 'alice')).body.deliveries).toEqual(listed);
    // Another owner sees none of it; the deliveries don't clutter the task list.
    expect((await t!.http('bob').get('/v1/webhooks/deliveries')).body.deliveries).toEqual([]);
    expect((await t!.http('alice').get('/v1/tasks')).body.tasks).toEqual([]);

    const attempts = t!.logs.lines.filter((l) => l.event === 'webhook.attempt');
    expect(attempts.map((l) => [l.attempt, l.outcome])).toEqual([
      [1, 'failed'],
      [2, 'failed'],
      [3, 'delivered'],
    ]);
    expect(attempts[0].problem).toBe('The endpoint answered HTTP 500.');
    expect(JSON.stringify(t!.logs.lines)).not.toContain(r.secret.slice('whsec_'.length));
  });

  it('a receiver stopped and started later still gets every event', async () => {
    const r = await receiver();
    await app(r);
    await r.stop();
    worker = t!.startTaskWorker();
    const first = await upload('alice', 'one.csv');
    const second = await upload('alice', 'two.csv');
    expect((await t!.http('alice').delete(`/v1/files/${first}`)).status).toBe(204);
    // Every event has been tried while nobody listened.
    const pending = await deliveriesWhen(t!, 'alice', (ds) => ds.length === 3 && ds.every((d) => d.lastError !== null));
    expect(pending.every((d) => d.status === 'pending')).toBe(true);
    expect(pending.find((d) => d.type === 'file.deleted')!.lastError).toEqual({ code: 'webhook_failed', message: expect.stringContaining('ECONNREFUSED') });

    await r.start();
    await r.waitForEvents(3);
    expect(r.events.map((e) => [e.type, e.data.id]).sort()).toEqual(
      [
        ['file.deleted', first],
        ['file.ready', first],
        ['file.ready', second],
      ].sort(),
    );
  });

  it('sends nothing for an upload that is rolled back: a refused multi-file upload, or a publish whose transaction fails', async () => {
    const r = await receiver();
    await app(r, { MAX_UPLOAD_BYTES: '1kb' });
    // All or nothing: the second part is too large, so the first is discarded too.
    const refused = await t!.http('alice').post('/v1/files').attach('file', Buffer.from('small'), 'small.txt').attach('file', Buffer.alloc(4096), 'big.bin');
    expect(refused.status).toBe(413);
    // A publish whose transaction rolls back after the file turned ready (as a task's completion can).
    const stored = await t!.files.store({ owner: 'alice', originalName: 'rolled-back.txt', contentType: 'text/plain' }, (await import('node:stream')).Readable.from([Buffer.from('x')]));
    await expect(
      t!.db.transaction().execute(async (trx) => {
        await t!.files.publish('alice', [{ id: stored.record.id, size: stored.size, sha256: stored.sha256 }], trx);
        throw new Error('the transaction fails after the publish');
      }),
    ).rejects.toThrow('the transaction fails after the publish');
    await t!.files.discard(stored.record);
    expect(await undelivered()).toBe(0);

    const kept = await upload('alice', 'kept.txt');
    worker = t!.startTaskWorker();
    await r.waitForEvents(1);
    await settled();
    expect(r.events.map((e) => [e.type, e.data.id])).toEqual([['file.ready', kept]]);
    expect((await allRecords(t!.db)).map((f) => f.name)).toEqual(['kept.txt']);
  });

  it('sends task.succeeded with the outputs of a report, and task.failed and file.missing when its source is gone', async () => {
    const r = await receiver();
    await app(r);
    worker = t!.startTaskWorker();
    const done = await t!.http('alice').post('/v1/reports?wait=10').send({ format: 'csv', title: 'T', columns: [{ key: 'a', header: 'A', type: 'string' }], rows: [{ a: 'x' }] });
    expect(done.body.status).toBe('succeeded');
    await r.waitForEvents(1, (e) => e.type === 'task.succeeded');
    const succeeded = r.events.find((e) => e.type === 'task.succeeded')!;
    expect(succeeded.data).toEqual(expect.objectContaining({ id: done.body.id, kind: 'report', owner: 'alice', status: 'succeeded', error: null, outputs: [done.body.outputs[0].id] }));
    await r.waitForEvents(1, (e) => e.type === 'file.ready' && e.data.id === done.body.outputs[0].id);

    const source = await upload('alice', 'source.csv', 'a,b\n1,2\n');
    const [record] = (await allRecords(t!.db)).filter((f) => f.id === source);
    await fsp.rm(path.join(t!.config.storage.path, ...record.key.split('/')));
    const failed = await t!.http('alice').post('/v1/reports?wait=10').send({ format: 'csv', title: 'T', source: { fileId: source } });
    expect(failed.body.status).toBe('failed');
    await r.waitForEvents(1, (e) => e.type === 'task.failed');
    await r.waitForEvents(1, (e) => e.type === 'file.missing');
    expect(r.events.find((e) => e.type === 'task.failed')!.data).toEqual(expect.objectContaining({ id: failed.body.id, status: 'failed', error: { code: 'file_missing', message: expect.any(String) } }));
    expect(r.events.find((e) => e.type === 'file.missing')!.data).toEqual(expect.objectContaining({ id: source, status: 'missing' }));
    // A download finding it missing again sends nothing more.
    expect((await t!.http('alice').get(`/v1/files/${source}/content`)).status).toBe(404);
    await settled();
    expect(r.events.filter((e) => e.type === 'file.missing')).toHaveLength(1);
  });

  it("an owner's endpoint with an events filter gets only those events of that owner, signed with its own secret", async () => {
    const all = await receiver('a');
    const bobs = await receiver('b');
    await app(all);
    const endpoint = await t!.resources.webhooks.add('bob', bobs.url, ['file.deleted']);
    // Its own secret: the receiver verifies with what `add` returned.
    (bobs as { secret: string }).secret = endpoint.secret;
    worker = t!.startTaskWorker();
    const alices = await upload('alice', 'a.txt');
    await t!.http('alice').delete(`/v1/files/${alices}`);
    const bobsFile = await upload('bob', 'b.txt');
    await t!.http('bob').delete(`/v1/files/${bobsFile}`);
    await all.waitForEvents(4);
    await bobs.waitForEvents(1);
    await settled();
    expect(bobs.rejected).toEqual([]);
    expect(bobs.events.map((e) => [e.type, e.data.id])).toEqual([['file.deleted', bobsFile]]);
    expect((await t!.http('bob').get('/v1/webhooks/deliveries')).body.deliveries.map((d: { endpoint: string }) => d.endpoint).sort()).toEqual(
      ['default', 'default', endpoint.id].sort(),
    );
  });

  it('gives a delivery up after WEBHOOK_GIVE_UP; the deliveries list and the doctor say so', async () => {
    const r = await receiver();
    for (let i = 0; i < 50; i++) r.answers.push((_req, res) => res.writeHead(503).end());
    await app(r, { WEBHOOK_GIVE_UP: '1s', WEBHOOK_RETRY_DELAY: '100ms' });
    worker = t!.startTaskWorker();
    await upload('alice', 'never.txt');
    const [delivery] = await deliveriesWhen(t!, 'alice', (ds) => ds.length === 1 && ds[0].status === 'failed');
    expect(delivery).toEqual(expect.objectContaining({ status: 'failed', lastError: { code: 'webhook_given_up', message: expect.stringMatching(/^Given up after \d+ attempts\. The endpoint answered HTTP 503\.$/) } }));
    expect(delivery.attempts).toBeGreaterThan(2);
    expect(r.events).toEqual([]);

    const report = await runChecks(doctorDeps(t!.resources, t!.config, t!.logs.log), { graceMs: 0, verify: false });
    expect(report.problems).toEqual([expect.objectContaining({ kind: 'webhook_given_up', owner: 'alice', deliveryId: delivery.id, type: 'file.ready', endpoint: 'default' })]);
    expect(report.summary.webhooksGivenUp).toBe(1);
  });
});
