/**
 * docs/deploy.md's Heroku recipe, followed as Heroku runs it: each process type's command read
 * from the Procfile and run through `/bin/sh -c` (so its `VAR=${VAR:-x}` prefix is expanded by a
 * shell) with the config vars the docs set, `DYNO` and (for web) `PORT`; `release` first, then
 * `web` and `worker`; a key made with the docs' `heroku run` command on a one-off dyno. Files go
 * to a bucket (s3rver); the catalog is a PostgreSQL server that, like Heroku Postgres, only takes
 * TLS with a self-signed certificate, so connecting at all needs the recipe's PGSSLMODE=require.
 * Each dyno has its own home and temp directory. Stopping sends SIGTERM to every process of
 * the dyno, as Heroku does.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { fencedBlocks, readDocument } from '../docs/markdown';
import { type PostgresServer, startPostgres } from '../helpers/postgres';
import { s3Env } from '../helpers/s3env';
import { type S3TestServer, startS3Server } from '../helpers/s3server';
import { bearer, freePort, ROOT, ServiceProcess } from '../helpers/service';
import { makeTempDir } from '../helpers/tmp';

const execFileAsync = promisify(execFile);
/** Heroku sends SIGKILL this long after SIGTERM. */
const HEROKU_KILL_AFTER_MS = 30_000;

/** Process type -> command, as Heroku reads a Procfile (`<type>: <command>`, one per line). */
function procfile(): Record<string, string> {
  const types: Record<string, string> = {};
  for (const line of fs.readFileSync(path.join(ROOT, 'Procfile'), 'utf8').split('\n')) {
    const m = /^([A-Za-z0-9_-]+):\s*(.+)$/.exec(line);
    if (m) types[m[1]] = m[2].trim();
  }
  return types;
}

/** The `heroku ...` commands of docs/deploy.md's Heroku section, without the `$ ` prompt. */
function herokuCommands(): string[] {
  const doc = readDocument('docs/deploy.md');
  const start = doc.indexOf('\n## Heroku\n');
  const section = doc.slice(start, doc.indexOf('\n## ', start + 1));
  return fencedBlocks(section)
    .filter((b) => b.lang === 'console')
    .flatMap((b) => b.body.split('\n'))
    .filter((l) => l.startsWith('$ heroku '))
    .map((l) => l.slice(2));
}

let postgres: PostgresServer;
let s3: S3TestServer;
let base: string;
/** What every dyno's environment holds: the config vars, the add-on's DATABASE_URL, the endpoint. */
let appEnv: Record<string, string>;
const dynos: ChildProcess[] = [];

beforeAll(async () => {
  [postgres, s3, base] = await Promise.all([startPostgres({ tls: true }), startS3Server(), makeTempDir('stowage-heroku-')]);
  // What the operator types where the docs say `...` or `$(...)`.
  const theirs: Record<string, string> = {
    S3_BUCKET: s3.bucket,
    S3_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    SECRET_KEY: randomBytes(48).toString('base64'),
  };
  const configVars: Record<string, string> = {};
  for (const command of herokuCommands().filter((c) => c.startsWith('heroku config:set '))) {
    for (const [, name, value] of command.matchAll(/([A-Z][A-Z0-9_]*)=("[^"]*"|\S+)/g)) {
      const placeholder = value === '...' || value.includes('$(');
      if (placeholder && !(name in theirs)) throw new Error(`docs/deploy.md sets ${name}=${value}: give the test a value for it`);
      configVars[name] = placeholder ? theirs[name] : value;
    }
  }
  expect(configVars).toMatchObject({ STORAGE: 's3', PGSSLMODE: 'require' });
  // The add-on sets DATABASE_URL (no sslmode in it); s3rver is a provider that needs its endpoint,
  // path-style addressing and checksums only when required (docs/storage.md, Providers).
  const { S3_ENDPOINT, S3_FORCE_PATH_STYLE, S3_CHECKSUMS } = s3Env(s3);
  appEnv = { ...configVars, DATABASE_URL: postgres.url, S3_ENDPOINT, S3_FORCE_PATH_STYLE, S3_CHECKSUMS };
});

afterAll(async () => {
  for (const child of dynos) if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL');
  await Promise.all([postgres?.stop(), s3?.close(), base && fsp.rm(base, { recursive: true, force: true })]);
});

/** A dyno's own environment: the app's config, its name, its own home and temp directory. */
async function dynoEnv(name: string, extra: Record<string, string> = {}): Promise<Record<string, string>> {
  const home = path.join(base, name);
  await fsp.mkdir(path.join(home, 'tmp'), { recursive: true });
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, TMPDIR: path.join(home, 'tmp'), ...appEnv, DYNO: name, ...extra };
}

/** Starts a process type's command as Heroku does: `/bin/sh -c`, in the app's directory, in its own process group. */
function startDyno(command: string, env: Record<string, string>): ServiceProcess {
  const child = spawn('/bin/sh', ['-c', command], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  dynos.push(child);
  return new ServiceProcess(child);
}

/** Heroku's stop: SIGTERM to every process in the dyno; how it exited and how long it took. */
async function stopDyno(dyno: ServiceProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
  const started = Date.now();
  process.kill(-dyno.child.pid!, 'SIGTERM');
  await dyno.exited;
  return { code: dyno.child.exitCode, signal: dyno.child.signalCode, ms: Date.now() - started };
}

it('release, then web and worker from the Procfile: upload, a report built by the worker dyno, downloads, and a clean stop', async () => {
  const types = procfile();
  expect(Object.keys(types).sort()).toEqual(['release', 'web', 'worker']);

  // Release phase: runs to completion before any new dyno starts.
  const release = startDyno(types.release, await dynoEnv('release.1'));
  expect(await release.exited).toBe(0);
  expect(release.lines.map((l) => l.msg)).toContainEqual(expect.stringMatching(/^applied: /));

  // `heroku run <the docs' command>` on a one-off dyno: prints the token, then says it on stderr.
  const oneOff = herokuCommands().find((c) => c.startsWith('heroku run '))!.slice('heroku run '.length);
  const { stdout } = await execFileAsync('/bin/sh', ['-c', oneOff], { cwd: ROOT, env: await dynoEnv('run.1') });
  const token = stdout.trim().split('\n')[0];
  expect(token).toMatch(/^stw_/);
  const auth = bearer(token);

  const port = await freePort();
  const web = startDyno(types.web, await dynoEnv('web.1', { PORT: String(port) }));
  const worker = startDyno(types.worker, await dynoEnv('worker.1'));
  await Promise.all([web.waitFor((l) => l.msg === 'listening'), worker.waitFor((l) => l.msg === 'worker started')]);
  const url = `http://127.0.0.1:${port}`;

  const csv = Buffer.from('city,visits\nParis,3\nLyon,5\n');
  const form = new FormData();
  form.append('file', new Blob([csv], { type: 'text/csv' }), 'visits.csv');
  const uploaded = await fetch(`${url}/v1/files`, { method: 'POST', body: form, headers: auth });
  expect(uploaded.status).toBe(201);
  const source = ((await uploaded.json()) as { files: { id: string; store: string }[] }).files[0];
  expect(source.store).toBe('s3');

  const queued = await fetch(`${url}/v1/reports?wait=20`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ format: 'csv', title: 'Visits', source: { fileId: source.id } }),
  });
  const task = (await queued.json()) as { id: string; status: string; outputs: { id: string; name: string; sha256: string; links: { content: string } }[] };
  expect(queued.status).toBe(201);
  expect(task.status).toBe('succeeded');
  // Built by the worker dyno: the web dyno runs no tasks (WORKERS=0 from the Procfile).
  expect(worker.lines).toContainEqual(expect.objectContaining({ msg: 'task finished', taskId: task.id, outcome: 'succeeded' }));
  expect(web.lines.filter((l) => l.msg === 'task started')).toEqual([]);

  const download = async (link: string) => {
    const res = await fetch(`${url}${link}`, { headers: auth });
    expect(res.status).toBe(200);
    return Buffer.from(await res.arrayBuffer());
  };
  expect(await download(`/v1/files/${source.id}/content`)).toEqual(csv);
  const report = task.outputs.find((o) => o.name === 'Visits.csv')!;
  const built = await download(report.links.content);
  expect(createHash('sha256').update(built).digest('hex')).toBe(report.sha256);
  expect(built.toString('utf8')).toMatch(/Paris.*3[\s\S]*Lyon.*5/);
  // The bytes are in the bucket, not on either dyno's disk.
  expect((await s3.objectKeys()).length).toBeGreaterThanOrEqual(1 + task.outputs.length);
  for (const dyno of ['web.1', 'worker.1']) expect(fs.existsSync(path.join(base, dyno, 'tmp', 'stowage', 'files'))).toBe(false);

  const [webStop, workerStop] = await Promise.all([stopDyno(web), stopDyno(worker)]);
  expect(webStop).toMatchObject({ code: 0, signal: null });
  expect(workerStop).toMatchObject({ code: 0, signal: null });
  expect(Math.max(webStop.ms, workerStop.ms)).toBeLessThan(HEROKU_KILL_AFTER_MS);
});
