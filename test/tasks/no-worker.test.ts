import fsp from 'node:fs/promises';
import path from 'node:path';
import { bearer, createKeyWithCli, freePort, runService, type ServiceProcess } from '../helpers/service';
import { serverSentEvents } from '../helpers/sse';
import { makeTempDir } from '../helpers/tmp';

/**
 * The default embedded catalog with WORKERS=0, run as an operator would: the built CLI's `serve`
 * says at start-up that nothing runs its tasks, a report queued there says so at once (on the
 * task, its events, `?wait` and `/readyz`), and a `stowage worker` started on the same SQLite file
 * on this host runs it. A worker that stops, cleanly or killed, is no longer counted, at once.
 */

const NO_WORKER = 'no worker is running';
const REPORT = JSON.stringify({ format: 'csv', title: 'Sums', columns: [{ key: 'a', header: 'A', type: 'integer' }], rows: [{ a: 1 }] });

let dir: string;
let env: Record<string, string>;
let auth: { Authorization: string };
let base: string;
let web: ServiceProcess;
const running: ServiceProcess[] = [];

beforeAll(async () => {
  dir = await makeTempDir('stowage-no-worker-');
  env = { HOME: dir, STORAGE: 'volume', STORAGE_PATH: path.join(dir, 'files'), DATABASE_PATH: path.join(dir, 'stowage.db'), LOG_LEVEL: 'info' };
  auth = bearer(await createKeyWithCli(env, 'alice', 'write', { cwd: dir }));
  const port = await freePort();
  web = runService(['serve'], { cwd: dir, env: { ...env, WORKERS: '0', PORT: String(port), HOST: '127.0.0.1' } });
  running.push(web);
  await web.waitFor((l) => l.msg === 'listening');
  base = `http://127.0.0.1:${port}`;
});
afterAll(async () => {
  await Promise.all(running.map((s) => s.stop()));
  await fsp.rm(dir, { recursive: true, force: true });
});

async function startWorker(): Promise<ServiceProcess> {
  const worker = runService(['worker'], { cwd: dir, env });
  running.push(worker);
  await worker.waitFor((l) => l.msg === 'worker started');
  return worker;
}

/** POST /v1/reports?wait=SECONDS: the answer, and how long it took. */
async function report(waitS: number): Promise<{ status: number; body: Record<string, unknown>; tookMs: number }> {
  const asked = Date.now();
  const res = await fetch(`${base}/v1/reports?wait=${waitS}`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, body: REPORT });
  return { status: res.status, body: (await res.json()) as Record<string, unknown>, tookMs: Date.now() - asked };
}

const get = async (url: string) => (await fetch(`${base}${url}`, { headers: auth })).json() as Promise<Record<string, unknown>>;
const readyz = async () => (await fetch(`${base}/readyz`)).json() as Promise<{ checks: { workers: string }; message?: string }>;

/** The task's server-sent events, one `{ event, data }` at a time. */
async function* events(id: string): AsyncGenerator<{ event: string; data: Record<string, unknown> }> {
  yield* serverSentEvents(await fetch(`${base}/v1/tasks/${id}/events`, { headers: auth }));
}

it('warns at start-up that WORKERS=0 on the embedded catalog runs no report unless a worker shares its file', async () => {
  const warning = await web.waitFor((l) => String(l.msg).startsWith('WORKERS=0'));
  expect(warning.level).toBe(40);
  expect(warning.msg).toBe(
    `WORKERS=0 with the embedded SQLite catalog: reports queued here run only while \`stowage worker\` runs on this host with the same DATABASE_PATH (${env.DATABASE_PATH}); otherwise set WORKERS to 1 or more`,
  );
});

it('warns that an in-memory catalog with WORKERS=0 never runs a report: no other process can reach it', async () => {
  const port = await freePort();
  const memory = runService(['serve'], { cwd: dir, env: { HOME: dir, STORAGE: 'memory', WORKERS: '0', PORT: String(port), HOST: '127.0.0.1' } });
  running.push(memory);
  const warning = await memory.waitFor((l) => String(l.msg).startsWith('WORKERS=0'));
  expect(warning.msg).toBe('WORKERS=0 with an in-memory catalog, which no other process can reach: reports queued here never run (set WORKERS to 1 or more)');
  expect(await memory.stop()).toBe(0);
});

it('a report queued with no worker says so at once; a `stowage worker` on the same SQLite file runs it, and the word goes', async () => {
  const queued = await report(20);
  expect(queued.status).toBe(202);
  expect(queued.body).toMatchObject({ status: 'queued', waiting: NO_WORKER });
  // Asked to wait 20 s; waiting would change nothing, so the answer came at once.
  expect(queued.tookMs).toBeLessThan(3000);
  const id = String(queued.body.id);
  expect(await get(`/v1/tasks/${id}`)).toMatchObject({ status: 'queued', waiting: NO_WORKER });
  const ready = await readyz();
  expect(ready.checks.workers).toBe('none');
  expect(ready.message).toContain('Run `stowage worker` on this catalog, or set WORKERS to 1 or more.');

  const stream = events(id);
  const first = await stream.next();
  expect(first.value).toMatchObject({ event: 'progress', data: { status: 'queued', waiting: NO_WORKER } });

  const worker = await startWorker();
  // The stream says so when the worker is seen, and ends with the report built.
  const seen: { event: string; data: Record<string, unknown> }[] = [];
  for await (const e of stream) seen.push(e);
  expect(seen.at(-1)).toMatchObject({ event: 'done', data: { status: 'succeeded' } });
  expect(seen.every((e) => !('waiting' in e.data))).toBe(true);
  expect(await get(`/v1/tasks/${id}`)).not.toHaveProperty('waiting');
  const built = await report(20);
  expect(built.status).toBe(201);
  expect(built.body).not.toHaveProperty('waiting');
  expect(await readyz()).toEqual(expect.objectContaining({ checks: expect.objectContaining({ workers: 'ok' }) }));

  // Stopped cleanly, the worker leaves the registry as it goes.
  expect(await worker.stop()).toBe(0);
  expect((await readyz()).checks.workers).toBe('none');
  expect((await report(20)).body.waiting).toBe(NO_WORKER);
});

it('a worker killed outright on this host is no longer counted, without waiting for its heartbeat to go stale', async () => {
  const worker = await startWorker();
  expect((await readyz()).checks.workers).toBe('ok');
  worker.child.kill('SIGKILL');
  await worker.exited;
  expect((await readyz()).checks.workers).toBe('none');
  const queued = await report(20);
  expect(queued.body.waiting).toBe(NO_WORKER);
  expect(queued.tookMs).toBeLessThan(3000);
});
