/**
 * A dyno's disk is private and wiped on restart. The scenario: two web dynos and a worker
 * dyno, each with its own disk (TMPDIR), on one PostgreSQL, with STORAGE=tmp STORAGE_MIRROR=s3.
 * Across dynos that loses files (the worker can't read the web dyno's bytes to mirror them, and a
 * read on the other web dyno marks a file missing), so each refuses at start-up with one line,
 * before it touches the catalog, the bucket or its disk. So does a one-off dyno's `keys create`
 * without DATABASE_URL, which would write the key to its throwaway disk.
 */
import { once } from 'node:events';
import fsp from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { fencedBlocks, readDocument } from '../docs/markdown';
import { TEST_SECRET_KEY } from '../helpers/app';
import { type PostgresServer, startPostgres } from '../helpers/postgres';
import { s3Env } from '../helpers/s3env';
import { type S3TestServer, startS3Server } from '../helpers/s3server';
import { freePort, runService } from '../helpers/service';
import { listFilesDeep, makeTempDir } from '../helpers/tmp';

let postgres: PostgresServer;
let s3: S3TestServer;
let base: string;

beforeAll(async () => {
  [postgres, s3, base] = await Promise.all([startPostgres(), startS3Server(), makeTempDir('stowage-dynos-')]);
});
afterAll(async () => {
  await Promise.all([postgres?.stop(), s3?.close(), base && fsp.rm(base, { recursive: true, force: true })]);
});

/** Runs one dyno's process to its exit, in a directory of its own (its disk); what it said and left. */
async function dyno(name: string, args: string[], env: Record<string, string>) {
  const disk = path.join(base, name);
  await fsp.mkdir(path.join(disk, 'tmp'), { recursive: true });
  const svc = runService(args, { cwd: disk, env: { HOME: disk, TMPDIR: path.join(disk, 'tmp'), DYNO: name, SECRET_KEY: TEST_SECRET_KEY, ...env } });
  const closed = once(svc.child, 'close');
  const code = await svc.exited;
  await closed;
  return { code, stderr: svc.stderr, stdout: svc.lines, written: await listFilesDeep(disk) };
}

const refusing = (port: number) =>
  new Promise<string>((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve('listening')));
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? String(err)));
  });

it('two web dynos and a worker dyno with STORAGE=tmp STORAGE_MIRROR=s3 each refuse to start, with one line, and touch nothing', async () => {
  const env = { ...s3Env(s3, { STORAGE: 'tmp' }), STORAGE_MIRROR: 's3', DATABASE_URL: postgres.url };
  const ports = [await freePort(), await freePort()];
  const [web1, web2, worker1] = await Promise.all([
    dyno('web.1', ['serve'], { ...env, PORT: String(ports[0]), WORKERS: '0' }),
    dyno('web.2', ['serve'], { ...env, PORT: String(ports[1]), WORKERS: '0' }),
    dyno('worker.1', ['worker'], env),
  ]);
  for (const [name, run] of [['web.1', web1], ['web.2', web2], ['worker.1', worker1]] as const) {
    expect(run.code).toBe(1);
    expect(run.stderr).toEqual([
      'stowage: cannot start',
      `  STORAGE: tmp with STORAGE_MIRROR=s3 is refused on a Heroku dyno (DYNO=${name}): a dyno's disk is private and wiped on restart; other dynos can't read or mirror it. Use STORAGE=s3 without STORAGE_MIRROR`,
    ]);
    expect(run.stdout).toEqual([]);
    expect(run.written).toEqual([]);
  }
  expect(await Promise.all(ports.map(refusing))).toEqual(['ECONNREFUSED', 'ECONNREFUSED']);
  // Refused before opening anything: no schema in the catalog, no probe object in the bucket.
  const db = new pg.Client({ connectionString: postgres.url });
  await db.connect();
  const { rows } = await db.query("select table_name from information_schema.tables where table_schema = 'public'");
  await db.end();
  expect(rows).toEqual([]);
  expect(await s3.objectKeys()).toEqual([]);
});

it('a one-off dyno without DATABASE_URL refuses to create a key on its throwaway disk', async () => {
  const run = await dyno('run.1', ['keys', 'create', '--owner', 'backend', '--scope', 'service'], s3Env(s3));
  expect(run.code).toBe(1);
  expect(run.stderr).toEqual([
    'stowage: cannot start',
    "  DATABASE_URL: required on a Heroku dyno (DYNO=run.1): the embedded SQLite catalog would be on the dyno's disk, wiped on every restart and unseen by other dynos. Add Heroku Postgres (DATABASE_URL)",
  ]);
  expect(run.stdout).toEqual([]);
  // No ./data/stowage.db (nor anything else) left behind.
  expect(run.written).toEqual([]);
});

it('prints what docs/deploy.md quotes for a web dyno with neither Heroku Postgres nor STORAGE=s3', async () => {
  const doc = readDocument('docs/deploy.md');
  const start = doc.indexOf('\n## Heroku\n');
  const heroku = doc.slice(start, doc.indexOf('\n## ', start + 1));
  const quoted = fencedBlocks(heroku).find((b) => b.lang === 'text')!.body.split('\n');
  const run = await dyno('web.1', ['serve'], { ...s3Env(s3, { STORAGE: 'tmp' }), STORAGE_MIRROR: 's3' });
  expect(run.code).toBe(1);
  expect(run.stderr).toEqual(quoted);
});
