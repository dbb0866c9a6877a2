import { type TaskHandler, Worker } from '../../src/tasks/worker';
import { buildTestApp, type TestApp } from '../helpers/app';

/**
 * A running task that shows no progress for `stallMs` (TASK_STALL_TIMEOUT) stops renewing its
 * lease: it is stopped and retried, or, if its handler does not stop, another worker takes it
 * once the lease runs out. A task that keeps moving keeps its lease however long it runs.
 */

const STALL_MS = 1000;
const LEASE_MS = 1500;
/** The worker looks every third of the lease; scheduling slack on top. */
const CHECK_MS = LEASE_MS / 3;
const MARGIN_MS = 750;

let t: TestApp;
const workers: Worker[] = [];
beforeEach(async () => {
  t = await buildTestApp();
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop(0)));
  await t.close();
});

function startWorker(handlers: Record<string, TaskHandler>, workerId: string, stallMs = STALL_MS) {
  const worker = new Worker({ queue: t.queue, files: t.files, log: t.logs.log, handlers, concurrency: 1, leaseMs: LEASE_MS, stallMs, pollMs: 20, retryBaseMs: 5, workerId });
  workers.push(worker);
  worker.start();
  return worker;
}

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

const finished = (taskId: string) => t.logs.waitFor((l) => l.taskId === taskId && l.msg === 'task finished');

it('is stopped once nothing has moved for the stall timeout, and retried; the task says why', async () => {
  let lastProgressAt = 0;
  let stoppedAt = 0;
  startWorker(
    {
      stuck: async (ctx) => {
        if (ctx.task.attempts > 1) return 'Done on the second attempt.';
        await ctx.progress(99, 'Almost there.');
        lastProgressAt = Date.now();
        // Waits on something that never comes (a store that stopped answering), until stopped.
        await new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
      },
    },
    'stuck-worker',
  );
  const task = await t.queue.enqueue('stuck', 'anonymous', {});
  t.logs.waitFor((l) => l.taskId === task.id && l.outcome === 'stalled').then(() => (stoppedAt = Date.now()));
  await finished(task.id);

  expect(stoppedAt - lastProgressAt).toBeGreaterThanOrEqual(STALL_MS);
  expect(stoppedAt - lastProgressAt).toBeLessThan(STALL_MS + CHECK_MS + MARGIN_MS);
  const res = await t.http().get(`/v1/tasks/${task.id}`);
  expect(res.body).toMatchObject({ status: 'succeeded', attempts: 2 });
  expect(res.body.log.map((l: { message: string }) => l.message)).toEqual([
    'Queued.',
    'Almost there.',
    'Attempt 1 failed: The task made no progress for 1 s and was stopped. Retrying.',
    'Done on the second attempt.',
  ]);
});

it('whose handler does not stop is taken by another worker once its lease runs out', async () => {
  const release = gate();
  let lastProgressAt = 0;
  startWorker(
    {
      frozen: async (ctx) => {
        await ctx.progress(50);
        lastProgressAt = Date.now();
        // Deaf to its signal: only the lease, no longer renewed, frees the task.
        await release.opened;
      },
    },
    'frozen-worker',
  );
  const task = await t.queue.enqueue('frozen', 'anonymous', {});
  await t.logs.waitFor((l) => l.taskId === task.id && l.msg === 'task started');

  let takenAt = 0;
  startWorker(
    {
      frozen: async () => {
        takenAt = Date.now();
        return 'Done elsewhere.';
      },
    },
    'other-worker',
  );
  await t.logs.waitFor((l) => l.taskId === task.id && l.outcome === 'succeeded');
  expect(takenAt - lastProgressAt).toBeLessThan(STALL_MS + CHECK_MS + LEASE_MS + MARGIN_MS);
  expect(await t.queue.get('anonymous', task.id)).toMatchObject({ status: 'succeeded', attempts: 2, workerId: 'other-worker' });

  // When the frozen handler finally returns, its late result changes nothing.
  release.open();
  await t.logs.waitFor((l) => l.taskId === task.id && l.workerId === 'frozen-worker' && l.outcome === 'stalled');
  expect(await t.queue.get('anonymous', task.id)).toMatchObject({ status: 'succeeded', workerId: 'other-worker' });
});

it('keeps its lease for as long as it keeps moving: bytes into an output, or working()', async () => {
  const tick = () => new Promise((resolve) => setTimeout(resolve, STALL_MS / 5));
  startWorker(
    {
      slow: async (ctx) => {
        // Three stall timeouts long, never reporting a percentage.
        await ctx.output('slow.txt', 'text/plain', async (out) => {
          for (let i = 0; i < 8; i++) {
            out.write(`line ${i}\n`);
            await tick();
          }
          out.end();
        });
        for (let i = 0; i < 8; i++) {
          ctx.working();
          await tick();
        }
        return 'Slow but steady.';
      },
    },
    'slow-worker',
  );
  const task = await t.queue.enqueue('slow', 'anonymous', {});
  expect(await finished(task.id)).toMatchObject({ outcome: 'succeeded' });
  const res = await t.http().get(`/v1/tasks/${task.id}`);
  expect(res.body).toMatchObject({ status: 'succeeded', attempts: 1 });
  expect(res.body.outputs).toEqual([expect.objectContaining({ name: 'slow.txt', size: 56, status: 'ready' })]);
});
