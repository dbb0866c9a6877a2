import { createHash, randomBytes } from 'node:crypto';
import fsp from 'node:fs/promises';
import pg from 'pg';
import { type PostgresServer, startPostgres } from '../helpers/postgres';
import { s3Env } from '../helpers/s3env';
import { type S3TestServer, startS3Server } from '../helpers/s3server';
import { bearer, createKeyWithCli, freePort, runService, type ServiceProcess } from '../helpers/service';
import { makeTempDir } from '../helpers/tmp';

/**
 * Several real stowage processes (the built CLI) sharing one PostgreSQL catalog and one s3rver
 * bucket, as web and worker dynos or Fly Machines would.
 */

let postgres: PostgresServer;
let s3: S3TestServer;
let dir: string;
const running: ServiceProcess[] = [];

beforeAll(async () => {
  [postgres, s3] = await Promise.all([startPostgres(), startS3Server()]);
  dir = await makeTempDir('stowage-scale-');
});
afterAll(async () => {
  await Promise.all([postgres?.stop(), s3?.close(), fsp.rm(dir, { recursive: true, force: true })]);
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop()));
});

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

function start(args: string[], env: Record<string, string>): ServiceProcess {
  const svc = runService(args, { cwd: dir, env: { HOME: dir, LOG_LEVEL: 'info', ...env } });
  running.push(svc);
  return svc;
}

async function web(env: Record<string, string>): Promise<string> {
  const port = await freePort();
  const svc = start(['serve'], { ...env, WORKERS: '0', PORT: String(port), HOST: '127.0.0.1' });
  await svc.waitFor((l) => l.msg === 'listening');
  // Should it die, say why in the failing test's output.
  void svc.exited.then((code) => code !== null && code !== 0 && console.error(`serve exited ${code}:\n${svc.stderr.join('\n')}`));
  return `http://127.0.0.1:${port}`;
}

async function worker(env: Record<string, string>): Promise<ServiceProcess> {
  const svc = start(['worker'], env);
  await svc.waitFor((l) => l.msg === 'worker started');
  return svc;
}

/**
 * A fresh database and bucket: the environment every instance of one deployment shares, and the
 * `Authorization` header of alice's key, created once in its catalog: every instance accepts it.
 */
async function deployment(extra: Record<string, string> = {}): Promise<{ env: Record<string, string>; auth: { Authorization: string } }> {
  const [url, bucket] = await Promise.all([postgres.createDatabase(), s3.newBucket()]);
  const env = { ...s3Env(bucket), DATABASE_URL: url, ...extra };
  const key = await createKeyWithCli({ HOME: dir, ...env }, 'alice', 'write', { cwd: dir });
  return { env, auth: bearer(key) };
}

interface TaskView {
  id: string;
  status: string;
  attempts: number;
  outputs: { id: string; name: string; status: string }[];
}

/** Resolves when one of the workers logs that it finished the task (whatever the outcome). */
function finishedIn(workers: ServiceProcess[], id: string): Promise<unknown> {
  return Promise.race(workers.map((w) => w.waitFor((l) => l.msg === 'task finished' && l.taskId === id)));
}

async function getTask(base: string, id: string, auth: { Authorization: string }): Promise<TaskView> {
  return (await (await fetch(`${base}/v1/tasks/${id}`, { headers: auth })).json()) as TaskView;
}

it('migrations started by several processes at once apply exactly once', async () => {
  const url = await postgres.createDatabase();
  const procs = Array.from({ length: 4 }, () => start(['migrate'], { STORAGE: 'memory', DATABASE_URL: url }));
  const codes = await Promise.all(procs.map((p) => p.exited));
  expect(codes).toEqual([0, 0, 0, 0]);
  const said = procs.map((p) => p.lines.map((l) => l.msg).join('\n'));
  // One process applied every migration; the others found the schema up to date.
  expect(said.filter((s) => s.startsWith('applied: '))).toHaveLength(1);
  expect(said.filter((s) => s === 'schema is up to date')).toHaveLength(3);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ name: string; n: string }>('select name, count(*) as n from kysely_migration group by name');
    expect(rows.length).toBeGreaterThanOrEqual(4);
    expect(rows.every((r) => r.n === '1')).toBe(true);
    expect(said.find((s) => s.startsWith('applied: '))).toBe(`applied: ${rows.map((r) => r.name).sort().join(', ')}`);
  } finally {
    await client.end();
  }
});

it('a file uploaded through one web instance downloads through another, and a delete is seen by both', async () => {
  const { env, auth } = await deployment();
  const [a, b] = await Promise.all([web(env), web(env)]);
  const data = randomBytes(300 * 1024);
  const form = new FormData();
  form.append('file', new Blob([data]), 'shared.bin');
  const up = await fetch(`${a}/v1/files`, { method: 'POST', body: form, headers: auth });
  expect(up.status).toBe(201);
  const { id } = ((await up.json()) as { files: { id: string }[] }).files[0];

  const down = await fetch(`${b}/v1/files/${id}/content`, { headers: auth });
  expect(down.status).toBe(200);
  expect(sha256(Buffer.from(await down.arrayBuffer()))).toBe(sha256(data));

  expect((await fetch(`${a}/v1/files/${id}`, { method: 'DELETE', headers: auth })).status).toBe(204);
  const gone = await fetch(`${b}/v1/files/${id}/content`, { headers: auth });
  expect(gone.status).toBe(404);
  expect(((await gone.json()) as { error: { code: string } }).error.code).toBe('not_found');
});

it('50 reports queued at once are built exactly once, shared by two worker processes', async () => {
  const { env, auth } = await deployment();
  const base = await web(env);
  const workers = await Promise.all([worker(env), worker(env)]);
  const ids = await Promise.all(
    Array.from({ length: 50 }, async (_, i) => {
      const res = await fetch(`${base}/v1/reports`, {
        method: 'POST',
        headers: { ...auth, 'Content-Type': 'application/json' },
        body: JSON.stringify({
          format: 'csv',
          title: `report ${i}`,
          columns: [{ key: 'n', header: 'N', type: 'integer' }],
          rows: [{ n: i }, { n: i + 1 }],
        }),
      });
      expect(res.status).toBe(202);
      return ((await res.json()) as { id: string }).id;
    }),
  );
  await Promise.all(ids.map((id) => finishedIn(workers, id)));
  const tasks = await Promise.all(ids.map((id) => getTask(base, id, auth)));
  expect(tasks.map((t) => [t.status, t.attempts, t.outputs.length])).toEqual(ids.map(() => ['succeeded', 1, 1]));
  expect(tasks.map((t) => t.outputs[0].name).sort()).toEqual(ids.map((_, i) => `report ${i}.csv`).sort());

  // Each task finished once, in one worker or the other, and both workers took a share.
  const finishedBy = workers.map((w) => w.lines.filter((l) => l.msg === 'task finished' && l.outcome === 'succeeded').map((l) => l.taskId as string));
  expect([...finishedBy[0], ...finishedBy[1]].sort()).toEqual([...ids].sort());
  expect(finishedBy[0].length).toBeGreaterThan(0);
  expect(finishedBy[1].length).toBeGreaterThan(0);
  const files = (await (await fetch(`${base}/v1/files?limit=200`, { headers: auth })).json()) as { files: { status: string }[] };
  expect(files.files).toHaveLength(50);
  expect(files.files.every((f) => f.status === 'ready')).toBe(true);
});

it('a worker killed mid-task loses nothing: the other worker finishes the task, once', async () => {
  // A 3 s lease: a 1 s one can run out on a busy CI machine while the survivor works (see lease.test.ts).
  const { env, auth } = await deployment({ TASK_LEASE_SECONDS: '3', WORKER_CONCURRENCY: '1' });
  const base = await web(env);
  const workers = await Promise.all([worker(env), worker(env)]);

  const csv = ['id,name,amount', ...Array.from({ length: 100_000 }, (_, i) => `${i},name ${i},${i * 1.5}`)].join('\n');
  const form = new FormData();
  form.append('file', new Blob([csv], { type: 'text/csv' }), 'big.csv');
  const sourceId = ((await (await fetch(`${base}/v1/files`, { method: 'POST', body: form, headers: auth })).json()) as { files: { id: string }[] }).files[0].id;
  const queued = await fetch(`${base}/v1/reports`, {
    method: 'POST',
    headers: { ...auth, 'Content-Type': 'application/json' },
    body: JSON.stringify({ format: 'xlsx', title: 'Big', source: { fileId: sourceId } }),
  });
  const taskId = ((await queued.json()) as { id: string }).id;

  const started = await Promise.race(workers.map((w, i) => w.waitFor((l) => l.msg === 'task started').then(() => i)));
  const [doomed, survivor] = started === 0 ? workers : [workers[1], workers[0]];
  doomed.child.kill('SIGKILL');
  expect(await doomed.exited).toBeNull();

  const done = await survivor.waitFor((l) => l.msg === 'task finished' && l.taskId === taskId);
  expect(done).toMatchObject({ attempt: 2, outcome: 'succeeded' });
  const task = await getTask(base, taskId, auth);
  expect(task).toMatchObject({ status: 'succeeded', attempts: 2 });
  expect(task.outputs.map((o) => [o.name, o.status])).toEqual([
    ['Big.xlsx', 'ready'],
    ['Big-processing-log.txt', 'ready'],
  ]);
  // The source and the two outputs; the killed attempt's unfinished output was removed.
  const files = (await (await fetch(`${base}/v1/files?limit=200`, { headers: auth })).json()) as { files: { name: string }[] };
  expect(files.files.map((f) => f.name).sort()).toEqual(['Big-processing-log.txt', 'Big.xlsx', 'big.csv']);
});
