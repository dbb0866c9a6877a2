import http from 'node:http';
import type net from 'node:net';
import { Readable } from 'node:stream';
import { TaskQueue } from '../../src/tasks/queue';
import { TaskFailure } from '../../src/tasks/task';
import { type TaskHandler, Worker } from '../../src/tasks/worker';
import { allRecords, buildTestApp, type TestApp } from '../helpers/app';
import { CATALOG_DATABASES, useCatalogDatabase } from '../helpers/postgres';
import { serverSentEvents } from '../helpers/sse';
import { sha256 } from '../helpers/streams';

describe.each(CATALOG_DATABASES)('task queue and worker on %s', (kind) => {
  const database = useCatalogDatabase(kind);
  let t: TestApp;
  const workers: Worker[] = [];
  beforeEach(async () => {
    t = await buildTestApp({ STORAGE: 'volume', ...(await database.env()) });
  });
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.stop(0)));
    await t.close();
  });

  function gate() {
    let open!: () => void;
    const opened = new Promise<void>((resolve) => (open = resolve));
    return { open, opened };
  }

  function startWorker(handlers: Record<string, TaskHandler>, options: { leaseMs?: number; id?: string } = {}) {
    const worker = new Worker({
      queue: t.queue,
      files: t.files,
      log: t.logs.log,
      handlers,
      concurrency: 1,
      leaseMs: options.leaseMs ?? 5000,
      pollMs: 20,
      retryBaseMs: 5,
      workerId: options.id,
    });
    workers.push(worker);
    worker.start();
    return worker;
  }

  async function waitForStatus(id: string, status: string) {
    return new Promise<void>((resolve) => {
      const check = async () => {
        const task = await t.queue.get('anonymous', id);
        if (task?.status === status) {
          t.queue.events.off('changed', onChange);
          resolve();
        }
      };
      const onChange = (changed: string) => changed === id && void check();
      t.queue.events.on('changed', onChange);
      void check();
    });
  }

  it('runs a task, records progress and log lines, and publishes its output when it succeeds', async () => {
    const data = Buffer.from('a,b\n1,2\n');
    startWorker({
      echo: async (ctx) => {
        await ctx.progress(50, 'Half way.');
        await ctx.output('out.csv', 'text/csv', async (out) => {
          out.end(data);
        });
        return 'Made 1 file.';
      },
    });
    const task = await t.queue.enqueue('echo', 'anonymous', { any: 'payload' });
    await waitForStatus(task.id, 'succeeded');

    const res = await t.http().get(`/v1/tasks/${task.id}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: task.id, kind: 'echo', status: 'succeeded', progress: 100, attempts: 1, error: null });
    expect(res.body.log.map((l: { message: string }) => l.message)).toEqual(['Queued.', 'Half way.', 'Made 1 file.']);
    expect(res.body.outputs).toEqual([
      expect.objectContaining({ name: 'out.csv', contentType: 'text/csv', size: data.length, sha256: sha256(data), status: 'ready' }),
    ]);
    const file = await t.http().get(res.body.outputs[0].links.content);
    expect(file.text).toBe(data.toString());
  });

  it('fails at once with the handler’s reason for a TaskFailure, and leaves no output behind', async () => {
    startWorker({
      bad: async (ctx) => {
        await ctx.output('partial.csv', 'text/csv', async (out) => out.end('half'));
        throw new TaskFailure('source_rejected', 'The file is not a spreadsheet.');
      },
    });
    const task = await t.queue.enqueue('bad', 'anonymous', {});
    await waitForStatus(task.id, 'failed');
    const res = await t.http().get(`/v1/tasks/${task.id}`);
    expect(res.body).toMatchObject({ status: 'failed', attempts: 1, error: { code: 'source_rejected', message: 'The file is not a spreadsheet.' }, outputs: [] });
    expect(res.body.log.at(-1).message).toBe('Failed: The file is not a spreadsheet.');
    expect(await allRecords(t.db)).toEqual([]);
    expect(await t.storedFiles()).toEqual([]);
  });

  it('retries unexpected errors with backoff, then fails with a generic message after max attempts', async () => {
    let calls = 0;
    startWorker({
      flaky: async () => {
        calls++;
        throw new Error('disk on fire');
      },
    });
    const task = await t.queue.enqueue('flaky', 'anonymous', {}, { maxAttempts: 3 });
    await waitForStatus(task.id, 'failed');
    const res = await t.http().get(`/v1/tasks/${task.id}`);
    expect(calls).toBe(3);
    expect(res.body).toMatchObject({ status: 'failed', attempts: 3, error: { code: 'internal_error' } });
    expect(JSON.stringify(res.body)).not.toContain('disk on fire');
    expect(res.body.log.filter((l: { message: string }) => l.message.includes('Retrying'))).toHaveLength(2);
  });

  it('succeeds on a retry after a transient error', async () => {
    let calls = 0;
    startWorker({
      once: async () => {
        if (++calls === 1) throw new Error('blip');
        return 'ok';
      },
    });
    const task = await t.queue.enqueue('once', 'anonymous', {});
    await waitForStatus(task.id, 'succeeded');
    expect((await t.queue.get('anonymous', task.id))!.attempts).toBe(2);
  });

  it('cancels a running task: the handler is aborted and its outputs discarded', async () => {
    const started = gate();
    startWorker({
      slow: async (ctx) => {
        await ctx.output('never.csv', 'text/csv', async (out) => out.end('x'));
        started.open();
        await new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
      },
    });
    const task = await t.queue.enqueue('slow', 'anonymous', {});
    await started.opened;
    const res = await t.http().delete(`/v1/tasks/${task.id}`);
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('cancelled');
    await t.logs.waitFor((l) => l.taskId === task.id && l.outcome === 'lost');
    expect((await t.queue.get('anonymous', task.id))!.status).toBe('cancelled');
    expect(await allRecords(t.db)).toEqual([]);
    expect(await t.storedFiles()).toEqual([]);

    const again = await t.http().delete(`/v1/tasks/${task.id}`);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('task_finished');
  });

  it('cancels a queued task before any worker runs it', async () => {
    const task = await t.queue.enqueue('never', 'anonymous', {});
    expect((await t.http().delete(`/v1/tasks/${task.id}`)).body.status).toBe('cancelled');
    let ran = false;
    const worker = startWorker({ never: async () => void (ran = true) });
    await worker.stop(0);
    expect(ran).toBe(false);
  });

  it('reclaims a task whose worker stopped heartbeating, and the late worker cannot complete it', async () => {
    const dead = await t.queue.enqueue('job', 'anonymous', {});
    const claimed = await t.queue.claim('dead-worker', ['job'], 50);
    expect(claimed?.id).toBe(dead.id);
    startWorker({ job: async () => 'done by the live worker' }, { id: 'live-worker' });
    await waitForStatus(dead.id, 'succeeded');
    const task = (await t.queue.get('anonymous', dead.id))!;
    expect(task).toMatchObject({ attempts: 2, workerId: 'live-worker' });
    expect(await t.queue.succeed(claimed!, 'dead-worker', [])).toBe(false);
    expect(await t.queue.heartbeat(claimed!, 'dead-worker', 1000)).toBe(false);
  });

  it('takes a success recorded again by its own worker (the first answer lost with the connection) as done, and only from it', async () => {
    const task = await t.queue.enqueue('job', 'anonymous', {});
    const claimed = (await t.queue.claim('first-worker', ['job'], 5000))!;
    const { record, size, sha256: digest } = await t.files.store({ owner: 'anonymous', originalName: 'out.txt', contentType: 'text/plain' }, Readable.from([Buffer.from('out')]));
    const outputs = [{ id: record.id, size, sha256: digest }];
    expect(await t.queue.succeed(claimed, 'first-worker', outputs)).toBe(true);
    expect(await t.queue.succeed(claimed, 'first-worker', outputs)).toBe(true);
    expect(await t.queue.succeed(claimed, 'other-worker', outputs)).toBe(false);
    expect(await t.queue.succeed(claimed, 'first-worker', [])).toBe(false);
    const done = (await t.queue.get('anonymous', task.id))!;
    expect(done).toMatchObject({ status: 'succeeded', attempts: 1, outputFileIds: [record.id] });
    expect(done.log.map((l) => l.message)).toEqual(['Queued.', 'Done.']);
    expect((await t.files.get('anonymous', record.id))?.status).toBe('ready');
  });

  it('hands a running task back on shutdown, without counting the attempt', async () => {
    const started = gate();
    const first = startWorker({
      long: async (ctx) => {
        started.open();
        await new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
      },
    });
    const task = await t.queue.enqueue('long', 'anonymous', {});
    await started.opened;
    await first.stop(0);
    expect(await t.queue.get('anonymous', task.id)).toMatchObject({ status: 'queued', attempts: 0 });
    startWorker({ long: async () => 'finished elsewhere' });
    await waitForStatus(task.id, 'succeeded');
    expect((await t.queue.get('anonymous', task.id))!.attempts).toBe(1);
  });

  it('runs a task pinned to a Fly Machine only on that Machine’s workers, and an unpinned one anywhere', async () => {
    const onA = new TaskQueue(t.db, undefined, undefined, 'machine-a');
    const onB = new TaskQueue(t.db, undefined, undefined, 'machine-b');
    const pinned = await t.queue.enqueue('pinned', 'anonymous', {}, { machineId: 'machine-a' });
    // Neither another Machine nor a process with no Machine of its own can read machine-a's volume.
    expect(await onB.claim('worker-b', ['pinned'], 5000)).toBeUndefined();
    expect(await t.queue.claim('worker-anywhere', ['pinned'], 5000)).toBeUndefined();
    expect(await onA.claim('worker-a', ['pinned'], 5000)).toMatchObject({ id: pinned.id, status: 'running' });

    const free = await t.queue.enqueue('free', 'anonymous', {});
    expect(await onB.claim('worker-b', ['free'], 5000)).toMatchObject({ id: free.id, status: 'running' });
  });

  it('lists the owner’s tasks page by page, and hides other owners’ tasks', async () => {
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await t.queue.enqueue('x', 'erin', { i })).id);
    const other = await t.queue.enqueue('x', 'frank', {});
    const page1 = await t.http('erin').get('/v1/tasks?limit=2');
    expect(page1.body.tasks).toHaveLength(2);
    const page2 = await t.http('erin').get(`/v1/tasks?limit=2&cursor=${page1.body.nextCursor}`);
    expect(page2.body.tasks).toHaveLength(1);
    expect(page2.body.nextCursor).toBeNull();
    const listed = [...page1.body.tasks, ...page2.body.tasks] as { id: string; createdAt: string }[];
    expect(listed.map((x) => x.id).sort()).toEqual([...ids].sort());
    // Newest first (ties within a millisecond broken by id).
    const key = (x: { id: string; createdAt: string }) => `${x.createdAt}|${x.id}`;
    expect(listed.map(key)).toEqual(listed.map(key).sort().reverse());
    expect((await t.http('erin').get(`/v1/tasks/${other.id}`)).status).toBe(404);
  });

  it('streams progress and the final state as server-sent events', async () => {
    const step = gate();
    startWorker({
      steps: async (ctx) => {
        await ctx.progress(30, 'Thirty.');
        await step.opened;
        await ctx.progress(60, 'Sixty.');
        return 'All done.';
      },
    });
    const server = http.createServer(t.app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    try {
      const task = await t.queue.enqueue('steps', 'anonymous', {});
      const res = await fetch(`http://127.0.0.1:${port}/v1/tasks/${task.id}/events`, { headers: { Authorization: `Bearer ${await t.key('anonymous', 'read')}` } });
      expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
      const events: { event: string; data: { status: string; progress: number } }[] = [];
      for await (const e of serverSentEvents<{ status: string; progress: number }>(res)) {
        events.push(e);
        if (e.event === 'progress' && e.data.progress === 30) step.open();
      }
      const progress = events.filter((e) => e.event === 'progress').map((e) => e.data.progress);
      expect(progress).toContain(30);
      expect(progress).toContain(60);
      expect(progress).toEqual([...progress].sort((a, b) => a - b));
      expect(events.at(-1)).toMatchObject({ event: 'done', data: { status: 'succeeded', progress: 100 } });
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
