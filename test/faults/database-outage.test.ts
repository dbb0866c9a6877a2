import { createHash, randomBytes } from 'node:crypto';
import fsp from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import type { DatabaseSettings, PostgresSettings } from '../../src/catalog/database-settings';
import { openDatabase } from '../../src/catalog/database';
import { loadConfig } from '../../src/config';
import { storeKeyFor } from '../../src/files/names';
import { postgresWakeups } from '../../src/tasks/pg-wakeups';
import type { QueueSignal } from '../../src/tasks/wakeups';
import { LogCapture } from '../helpers/app';
import { type PostgresServer, startPostgres } from '../helpers/postgres';
import { parsePrometheus } from '../helpers/prometheus';
import { bearer, createKeyWithCli, freePort, runService, type ServiceProcess } from '../helpers/service';
import { listFilesDeep, makeTempDir } from '../helpers/tmp';

/**
 * PostgreSQL killed under the service (`pg_ctl stop -m immediate`, with a query held in flight)
 * and started again on the same port and data: the built `serve` processes (one volume, one
 * catalog) live through it, answer 503 `database_unavailable` with Retry-After meanwhile (never
 * 500), serve again within seconds of its return, lose or repeat no task, and once swept leave
 * no pending record, temp file or stray blob behind.
 */

const METRICS_TOKEN = 'metrics-token-for-the-outage-test';
let postgres: PostgresServer;
let down = false;
let dir: string;
let env: Record<string, string>;
let auth: { Authorization: string };
const running: ServiceProcess[] = [];

beforeAll(async () => {
  postgres = await startPostgres();
});
afterAll(async () => postgres?.stop());
beforeEach(async () => {
  dir = await makeTempDir('stowage-pg-outage-');
  await fsp.mkdir(path.join(dir, 'tmp'));
  env = {
    DATABASE_URL: await postgres.createDatabase(),
    STORAGE: 'volume',
    STORAGE_PATH: path.join(dir, 'files'),
    TMPDIR: path.join(dir, 'tmp'),
    HOME: dir,
    HOST: '127.0.0.1',
    // Debug: the leftover sweep's line says when a sweep ran. It runs every second here.
    LOG_LEVEL: 'debug',
    DIRECT_UPLOAD_EXPIRES_S: '1',
    // Leases run out during the outage: tasks running then are taken again after it.
    TASK_LEASE_SECONDS: '3',
    METRICS_TOKEN,
  };
  auth = bearer(await createKeyWithCli(env, 'alice', 'write', { cwd: dir }));
});
afterEach(async () => {
  if (down) await restart();
  await Promise.all(running.splice(0).map((s) => s.stop()));
  await fsp.rm(dir, { recursive: true, force: true });
});

async function crash(): Promise<void> {
  down = true;
  await postgres.crash();
}

async function restart(): Promise<void> {
  await postgres.restart();
  down = false;
}

/** `work`, unless one of the processes exits first: then the test fails at once, saying why. */
function unlessExited<T>(procs: { svc: ServiceProcess }[], work: Promise<T>): Promise<T> {
  const exits = procs.map(({ svc }) =>
    svc.exited.then((code) => {
      throw new Error(`a serve process exited (${code}):\n${svc.stderr.join('\n')}`);
    }),
  );
  // Once `work` is done, the processes' ends (at the test's end) are no failure.
  for (const exit of exits) exit.catch(() => undefined);
  return Promise.race([work, ...exits]);
}

async function serve(extra: Record<string, string> = {}): Promise<{ svc: ServiceProcess; base: string }> {
  const port = await freePort();
  const svc = runService(['serve'], { cwd: dir, env: { ...env, PORT: String(port), WORKERS: '1', ...extra } });
  running.push(svc);
  await svc.waitFor((l) => l.msg === 'worker started');
  return { svc, base: `http://127.0.0.1:${port}` };
}

/** Runs `sql` on a connection of its own (the test's view of the catalog). */
async function query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: env.DATABASE_URL });
  await client.connect();
  try {
    return (await client.query<R>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/**
 * A transaction that holds locks until `release`, on a connection that expects to be cut off
 * by the crash.
 */
async function holdLock(sql: string, params: unknown[] = []): Promise<{ rows: Record<string, unknown>[]; release(): Promise<void> }> {
  const client = new pg.Client({ connectionString: env.DATABASE_URL });
  client.on('error', () => undefined);
  await client.connect();
  await client.query('begin');
  const { rows } = await client.query(sql, params);
  return { rows, release: () => client.end().catch(() => undefined) };
}

/**
 * Resolves once a query of the service waits on a lock: it is in flight when the server dies.
 * PostgreSQL signals no such thing: pg_stat_activity is polled.
 */
async function queryWaitingOnLock(): Promise<void> {
  for (;;) {
    const [{ n }] = await query<{ n: string }>("select count(*) as n from pg_stat_activity where application_name = 'stowage' and wait_event_type = 'Lock'");
    if (Number(n) > 0) return;
    await delay(20);
  }
}

/** Whatever either process said that would mean a crash barely avoided, or not avoided. */
function crashTraces(svc: ServiceProcess): string[] {
  return [...svc.stderr, ...svc.lines.map((l) => JSON.stringify(l))].filter((l) => /Unhandled|uncaughtException|unhandledRejection/i.test(l));
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/**
 * An upload sent in two halves: the first at once (its pending record is created), the second
 * when `finish` is called. Resolves `answer` with the status and error code.
 */
function uploadInTwoHalves(base: string, name: string, data: Buffer) {
  const boundary = `----stowage${randomBytes(8).toString('hex')}`;
  const req = http.request(`${base}/v1/files`, { method: 'POST', headers: { ...auth, 'Content-Type': `multipart/form-data; boundary=${boundary}` } });
  const answer = new Promise<{ status: number; code?: string; retryAfter?: string }>((resolve, reject) => {
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString()) as { error?: { code: string } };
        resolve({ status: res.statusCode!, code: body.error?.code, retryAfter: res.headers['retry-after'] });
      });
    });
    req.on('error', reject);
  });
  req.write(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: application/octet-stream\r\n\r\n`);
  req.write(data.subarray(0, data.length / 2));
  return {
    answer,
    finish() {
      req.end(Buffer.concat([data.subarray(data.length / 2), Buffer.from(`\r\n--${boundary}--\r\n`)]));
    },
  };
}

interface Answer {
  kind: 'upload' | 'report';
  via: number;
  name: string;
  sentAt: number;
  answeredAt: number;
  status: number;
  code?: string;
  retryAfter: string | null;
  id?: string;
}

/**
 * A steady trickle of uploads (every 100 ms) and reports (every third round), alternating between
 * the processes, recording every answer.
 */
function trickle(bases: string[]) {
  const answers: Answer[] = [];
  const sent = new Map<string, string>();
  let waiters: { match: (a: Answer) => boolean; resolve: (a: Answer) => void }[] = [];
  let stopped = false;

  const record = (answer: Answer) => {
    answers.push(answer);
    waiters = waiters.filter((w) => !(w.match(answer) && (w.resolve(answer), true)));
  };
  const ask = async (kind: Answer['kind'], via: number, name: string, init: RequestInit, url: string) => {
    const sentAt = Date.now();
    try {
      const res = await fetch(`${bases[via]}${url}`, { ...init, signal: AbortSignal.timeout(30_000) });
      const body = (await res.json()) as { error?: { code: string }; id?: string; files?: { id: string }[] };
      record({ kind, via, name, sentAt, answeredAt: Date.now(), status: res.status, code: body.error?.code, retryAfter: res.headers.get('retry-after'), id: body.id ?? body.files?.[0].id });
    } catch (err) {
      // No answer at all (the process died): status 0, and why.
      record({ kind, via, name, sentAt, answeredAt: Date.now(), status: 0, code: String((err as Error).cause ?? err), retryAfter: null });
    }
  };
  const upload = (via: number, n: number) => {
    const data = randomBytes(16 * 1024);
    const name = `f${n}.bin`;
    sent.set(name, sha256(data));
    const form = new FormData();
    form.append('file', new Blob([data]), name);
    return ask('upload', via, name, { method: 'POST', body: form, headers: auth }, '/v1/files');
  };
  const report = (via: number, n: number) =>
    ask(
      'report',
      via,
      `r${n}.csv`,
      {
        method: 'POST',
        headers: { ...auth, 'Content-Type': 'application/json' },
        body: JSON.stringify({ format: 'csv', title: `r${n}`, columns: [{ key: 'n', header: 'N', type: 'integer' }], rows: [{ n }] }),
      },
      '/v1/reports',
    );

  const done = (async () => {
    for (let n = 0; !stopped; n++) {
      const via = n % 2;
      await Promise.all([upload(via, n), n % 3 === 0 && report(via, n)]);
      await delay(100);
    }
  })();

  return {
    answers,
    /** The sha256 of each file sent, by name. */
    sent,
    /** Resolves with the `nth` answer (already given or to come) that matches, the first by default. */
    next(match: (a: Answer) => boolean, nth = 1): Promise<Answer> {
      let seen = 0;
      const counted = (a: Answer) => match(a) && ++seen === nth;
      const given = answers.find(counted);
      if (given) return Promise.resolve(given);
      return new Promise((resolve) => waiters.push({ match: counted, resolve }));
    },
    async stop() {
      stopped = true;
      await done;
    },
  };
}

it('two processes live through a 10 s outage under load: 503 database_unavailable meanwhile, service within seconds after, no task lost or run twice, nothing left behind', async () => {
  const procs = await Promise.all([serve(), serve()]);
  // An upload under way, its record created, its bytes still coming.
  const slow = uploadInTwoHalves(procs[0].base, 'slow.bin', randomBytes(256 * 1024));
  await procs[0].svc.waitFor((l) => l.msg === 'upload started');
  const load = trickle(procs.map((p) => p.base));
  // Running normally first, through both processes.
  await Promise.all([0, 1].map((via) => load.next((a) => a.via === via && a.kind === 'upload' && a.status === 201, 10)));

  // A query in flight when the server dies: uploads wait on a lock of the files table.
  const lock = await holdLock('lock table files in access exclusive mode');
  await queryWaitingOnLock();
  const crashing = Date.now();
  await crash();
  const crashed = Date.now();
  await lock.release();
  // The upload's bytes all arrive while the database is down: its record can't turn ready.
  slow.finish();
  expect(await slow.answer).toEqual({ status: 503, code: 'database_unavailable', retryAfter: '5' });
  await delay(10_000 - (Date.now() - crashed));
  const restarting = Date.now();
  await restart();
  const restarted = Date.now();

  // Both take uploads and reports again within seconds.
  const back = await unlessExited(
    procs,
    Promise.all(
      [0, 1].flatMap((via) => [
        load.next((a) => a.via === via && a.kind === 'upload' && a.sentAt >= restarted && a.status === 201),
        load.next((a) => a.via === via && a.kind === 'report' && a.sentAt >= restarted && a.status === 202),
      ]),
    ),
  );
  for (const a of back) expect(a.answeredAt - restarted).toBeLessThan(5000);
  // And keep doing so.
  await Promise.all([0, 1].map((via) => load.next((a) => a.via === via && a.kind === 'upload' && a.sentAt >= restarted && a.status === 201, 10)));
  await load.stop();

  // Never a 500; during the outage, 503 database_unavailable with Retry-After, from both.
  const { answers } = load;
  expect(answers.filter((a) => ![201, 202, 503].includes(a.status))).toEqual([]);
  expect(answers.filter((a) => a.status === 503 && a.code !== 'database_unavailable')).toEqual([]);
  const during = answers.filter((a) => a.sentAt > crashed && a.answeredAt < restarting);
  expect(new Set(during.map((a) => a.via))).toEqual(new Set([0, 1]));
  expect(during.length).toBeGreaterThan(20);
  for (const a of during) expect([a.status, a.code, Number(a.retryAfter) > 0]).toEqual([503, 'database_unavailable', true]);
  // The requests held on the lock were answered too, with the same 503.
  expect(answers.some((a) => a.sentAt < crashing && a.answeredAt > crashing && a.status === 503)).toBe(true);

  // Every report accepted ends once, succeeded, with one output; any task at all, likewise.
  const accepted = answers.filter((a) => a.kind === 'report' && a.status === 202).map((a) => a.id!);
  const ids = (await query<{ id: string }>('select id from tasks')).map((t) => t.id);
  expect(ids).toEqual(expect.arrayContaining(accepted));
  await Promise.all(ids.map((id) => Promise.race(procs.map(({ svc }) => svc.waitFor((l) => l.msg === 'task finished' && l.taskId === id)))));
  const tasks = await query<{ id: string; status: string; output_file_ids: string }>('select id, status, output_file_ids from tasks');
  expect(tasks.filter((t) => t.status !== 'succeeded' || JSON.parse(t.output_file_ids).length !== 1)).toEqual([]);
  const finishedLines = procs.flatMap(({ svc }) => svc.lines.filter((l) => l.msg === 'task finished'));
  expect(finishedLines.map((l) => l.taskId).sort()).toEqual([...ids].sort());

  // A sweep after all that leaves no pending record, temp file or blob without its ready record.
  await Promise.all(
    procs.map(({ svc }) => {
      const mark = svc.lines.length;
      return svc.waitFor((l) => l.msg === 'leftover sweep' && svc.lines.indexOf(l) >= mark);
    }),
  );
  const records = await query<{ id: string; name: string; status: string }>("select id, name, status from files where owner = 'alice'");
  expect(records.filter((r) => r.status !== 'ready')).toEqual([]);
  const names = records.map((r) => r.name);
  expect(names.length).toBe(new Set(names).size);
  const onDisk = await listFilesDeep(path.join(dir, 'files'));
  expect(onDisk.filter((f) => f.startsWith('.tmp'))).toEqual([]);
  expect(onDisk.sort()).toEqual(records.map((r) => storeKeyFor(r.id)).sort());
  expect(await listFilesDeep(path.join(dir, 'tmp'))).toEqual([]);

  // Every upload answered 201 is kept, byte for byte.
  const kept = answers.filter((a) => a.kind === 'upload' && a.status === 201);
  expect(kept.length).toBeGreaterThanOrEqual(40);
  for (const a of kept) {
    const res = await fetch(`${procs[1 - a.via].base}/v1/files/${a.id}/content`, { headers: auth });
    expect([res.status, sha256(Buffer.from(await res.arrayBuffer()))]).toEqual([200, load.sent.get(a.name)]);
  }

  // The uploads the outage failed are counted by their code.
  const metrics = parsePrometheus(await (await fetch(`${procs[0].base}/metrics`, { headers: bearer(METRICS_TOKEN) })).text());
  expect(metrics.get('stowage_uploads_total{outcome="database_unavailable"}')).toBeGreaterThanOrEqual(1);
  expect(metrics.get('stowage_uploads_total{outcome="internal_error"}')).toBeUndefined();

  // Both still run, and neither came close to crashing.
  for (const { svc } of procs) {
    expect(svc.child.exitCode).toBeNull();
    expect(crashTraces(svc)).toEqual([]);
  }
}, 120_000);

describe('a task whose attempt ends while the database is down', () => {
  const columns = [
    { key: 'n', header: 'N', type: 'integer' },
    { key: 's', header: 'Text', type: 'string' },
  ];

  async function postReport(base: string, body: object): Promise<string> {
    const res = await fetch(`${base}/v1/reports`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    expect(res.status).toBe(202);
    return ((await res.json()) as { id: string }).id;
  }

  /** Waits for the worker to say, twice, that it keeps the outcome to record later: it retries. */
  async function outcomeKept(svc: ServiceProcess, taskId: string): Promise<void> {
    const kept = (l: { msg: string; taskId?: unknown }) => l.msg.startsWith('the database is unavailable: the task outcome is kept') && l.taskId === taskId;
    await svc.waitFor((l) => kept(l) && svc.lines.filter(kept).length >= 2);
  }

  async function finished(svc: ServiceProcess, base: string, taskId: string) {
    const line = await unlessExited([{ svc }], svc.waitFor((l) => l.msg === 'task finished' && l.taskId === taskId));
    const task = (await (await fetch(`${base}/v1/tasks/${taskId}`, { headers: auth })).json()) as {
      status: string;
      attempts: number;
      log: { message: string }[];
      outputs: { id: string; status: string; links: { content: string } }[];
    };
    return { line, task };
  }

  /** The owner's file records, and the blobs on the volume: one of each, ready, for one report. */
  async function leftAfter(svc: ServiceProcess) {
    const mark = svc.lines.length;
    await svc.waitFor((l) => l.msg === 'leftover sweep' && svc.lines.indexOf(l) >= mark);
    const records = await query<{ id: string; status: string }>("select id, status from files where owner = 'alice'");
    return { records, blobs: await listFilesDeep(path.join(dir, 'files')) };
  }

  /** A report whose success is being recorded (its output published) when the server dies. */
  async function succeedingAsTheServerDies(svc: ServiceProcess, base: string): Promise<{ taskId: string; outputId: string }> {
    // Long enough to build (a second or two) for its output's record to be locked meanwhile.
    const rows = Array.from({ length: 50_000 }, (_, n) => ({ n, s: `row ${n}` }));
    const taskId = await postReport(base, { format: 'pdf', title: 'Long', columns, rows });
    let output: { id: string }[] = [];
    // Its record appears once the report's thread has started (no event says so: polled).
    while (output.length === 0) output = await query<{ id: string }>("select id from files where owner = 'alice' and status = 'pending'");
    // Publishing the output waits on this lock.
    const lock = await holdLock('select status from files where id = $1 for update', [output[0].id]);
    expect(lock.rows).toEqual([{ status: 'pending' }]);
    await queryWaitingOnLock();
    await crash();
    await lock.release();
    await outcomeKept(svc, taskId);
    return { taskId, outputId: output[0].id };
  }

  it('succeeding: the process lives on, keeps the success, and records it once when the database is back', async () => {
    const { svc, base } = await serve();
    const { taskId, outputId } = await succeedingAsTheServerDies(svc, base);
    const output = [{ id: outputId }];
    await restart();

    const { line, task } = await finished(svc, base, taskId);
    expect(line.outcome).toBe('succeeded');
    expect(task).toMatchObject({ status: 'succeeded', attempts: 1, outputs: [{ id: output[0].id, status: 'ready' }] });
    const pdf = Buffer.from(await (await fetch(`${base}${task.outputs[0].links.content}`, { headers: auth })).arrayBuffer());
    expect(pdf.subarray(0, 5).toString()).toBe('%PDF-');
    const { records, blobs } = await leftAfter(svc);
    expect(records).toEqual([{ id: output[0].id, status: 'ready' }]);
    expect(blobs).toEqual([storeKeyFor(output[0].id)]);
    expect(svc.lines.filter((l) => l.msg === 'task finished')).toHaveLength(1);
    expect(svc.child.exitCode).toBeNull();
    expect(crashTraces(svc)).toEqual([]);
  });

  it('failing: the process lives on, records the failed attempt when the database is back, and the retry builds the report once', async () => {
    const { svc, base } = await serve();
    // Storing the output waits on this lock: the attempt fails when the server dies.
    const lock = await holdLock('lock table files in access exclusive mode');
    const taskId = await postReport(base, { format: 'csv', title: 'Short', columns, rows: [{ n: 1, s: 'one' }] });
    await queryWaitingOnLock();
    await crash();
    await lock.release();
    await outcomeKept(svc, taskId);
    await restart();

    const { line, task } = await finished(svc, base, taskId);
    expect(line.outcome).toBe('succeeded');
    expect(task).toMatchObject({ status: 'succeeded', attempts: 2, outputs: [{ status: 'ready' }] });
    expect(task.log.map((l) => l.message)).toContain('Attempt 1 failed: Something went wrong on our side while running this task. Retrying.');
    const { records, blobs } = await leftAfter(svc);
    expect(records).toEqual([{ id: task.outputs[0].id, status: 'ready' }]);
    expect(blobs).toEqual([storeKeyFor(task.outputs[0].id)]);
    expect(svc.lines.filter((l) => l.msg === 'task finished')).toHaveLength(1);
    expect(svc.child.exitCode).toBeNull();
    expect(crashTraces(svc)).toEqual([]);
  });

  it('succeeding as the process is told to stop: it stops within its grace period, and the next process builds the report once', async () => {
    const first = await serve({ SHUTDOWN_GRACE_SECONDS: '2' });
    const { taskId, outputId } = await succeedingAsTheServerDies(first.svc, first.base);
    const stopping = Date.now();
    expect(await first.svc.stop()).toBe(0);
    expect(Date.now() - stopping).toBeLessThan(10_000);
    expect(first.svc.lines.filter((l) => l.msg === 'task finished')).toEqual([]);
    expect(crashTraces(first.svc)).toEqual([]);

    await restart();
    const next = await serve();
    const { line, task } = await finished(next.svc, next.base, taskId);
    expect(line.outcome).toBe('succeeded');
    expect(task).toMatchObject({ status: 'succeeded', attempts: 2, outputs: [{ status: 'ready' }] });
    // The first attempt's output went with it.
    expect(task.outputs[0].id).not.toBe(outputId);
    const { records, blobs } = await leftAfter(next.svc);
    expect(records).toEqual([{ id: task.outputs[0].id, status: 'ready' }]);
    expect(blobs).toEqual([storeKeyFor(task.outputs[0].id)]);
    expect(crashTraces(next.svc)).toEqual([]);
  });
});

it('a queue listener that starts while the database is down subscribes once it is back', async () => {
  const settings = loadConfig({ STORAGE: 'memory', DATABASE_URL: env.DATABASE_URL }, dir).database as DatabaseSettings & PostgresSettings;
  const db = openDatabase(settings);
  const logs = new LogCapture();
  let hear: (signal: QueueSignal) => void = () => undefined;
  await crash();
  const subscription = await postgresWakeups(db, settings, logs.log).listen((signal) => hear(signal));
  try {
    const subscribed = new Promise<QueueSignal>((resolve) => (hear = resolve));
    await restart();
    // Once subscribed it says something may have been enqueued meanwhile, then hears what is sent.
    expect(await subscribed).toEqual({ type: 'enqueued', kind: '*' });
    const next = new Promise<QueueSignal>((resolve) => (hear = resolve));
    await query("select pg_notify('stowage_tasks', $1)", [JSON.stringify({ type: 'cancelled', id: 'abc' })]);
    expect(await next).toEqual({ type: 'cancelled', id: 'abc' });
    expect(logs.lines.some((l) => l.msg === 'queue listener could not connect; retrying')).toBe(true);
  } finally {
    await subscription.close();
    await db.destroy();
  }
});
