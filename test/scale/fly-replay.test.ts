import { createHash, randomBytes } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { startFlyMachine } from '../helpers/fly-proxy';
import { type PostgresServer, startPostgres } from '../helpers/postgres';
import { bearer, createKeyWithCli, runService, type ServiceProcess } from '../helpers/service';
import { makeTempDir } from '../helpers/tmp';

/**
 * Two `serve` processes as two Fly Machines: each with its own volume directory and
 * FLY_MACHINE_ID, one shared PostgreSQL catalog. Reads and deletes of a file on the other
 * Machine's volume answer `fly-replay: instance=<id>` for Fly's proxy instead of a 404.
 */

let postgres: PostgresServer;
let dir: string;
const running: ServiceProcess[] = [];
let a: string;
let b: string;
/** A key created once in the shared catalog: both machines accept it. */
let auth: { Authorization: string };

function machine(id: string, region: string, databaseUrl: string): Promise<string> {
  return startFlyMachine(running, dir, { id, region, databaseUrl, env: { WORKERS: '1' } });
}

beforeAll(async () => {
  postgres = await startPostgres();
  dir = await makeTempDir('stowage-fly-');
  auth = bearer(await createKeyWithCli({ HOME: dir, DATABASE_URL: postgres.url }, 'alice', 'write', { cwd: dir }));
  [a, b] = await Promise.all([machine('148e0a1b2c3d', 'iad', postgres.url), machine('9080e4f5a6b7', 'cdg', postgres.url)]);
});
afterAll(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop()));
  await Promise.all([postgres?.stop(), fsp.rm(dir, { recursive: true, force: true })]);
});

async function upload(base: string, data: Buffer, name: string): Promise<string> {
  const form = new FormData();
  form.append('file', new Blob([data]), name);
  const res = await fetch(`${base}/v1/files`, { method: 'POST', body: form, headers: auth });
  expect(res.status).toBe(201);
  return ((await res.json()) as { files: { id: string }[] }).files[0].id;
}

it('reads of a file on the other machine are replayed there, with no body; the owning machine serves it', async () => {
  const data = randomBytes(200 * 1024);
  const id = await upload(a, data, 'on-a.bin');

  for (const method of ['GET', 'HEAD']) {
    const res = await fetch(`${b}/v1/files/${id}/content`, { method, headers: auth });
    expect(res.status).toBe(409);
    expect(res.headers.get('fly-replay')).toBe('instance=148e0a1b2c3d');
    expect((await res.arrayBuffer()).byteLength).toBe(0);
  }
  // The record itself is in the shared catalog: any machine answers it, and it stays ready.
  const record = await fetch(`${b}/v1/files/${id}`, { headers: auth });
  expect(((await record.json()) as { status: string }).status).toBe('ready');

  const here = await fetch(`${a}/v1/files/${id}/content`, { headers: auth });
  expect(here.status).toBe(200);
  expect(here.headers.get('fly-replay')).toBeNull();
  expect(createHash('sha256').update(Buffer.from(await here.arrayBuffer())).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
});

it('a request that already is a replay is not replayed again, and the file is not marked missing', async () => {
  const id = await upload(a, Buffer.from('hello from iad\n'), 'hello.txt');
  const res = await fetch(`${b}/v1/files/${id}/content`, { headers: { ...auth, 'fly-replay-src': 'instance=148e0a1b2c3d;region=iad;t=1' } });
  expect(res.status).toBe(409);
  expect(res.headers.get('fly-replay')).toBeNull();
  expect(((await res.json()) as { error: { code: string } }).error.code).toBe('file_elsewhere');
  expect(((await (await fetch(`${a}/v1/files/${id}`, { headers: auth })).json()) as { status: string }).status).toBe('ready');
});

it('a delete on the wrong machine is replayed; on the owning machine it deletes', async () => {
  const id = await upload(a, Buffer.from('delete me\n'), 'doomed.txt');
  const wrong = await fetch(`${b}/v1/files/${id}`, { method: 'DELETE', headers: auth });
  expect(wrong.status).toBe(409);
  expect(wrong.headers.get('fly-replay')).toBe('instance=148e0a1b2c3d');
  expect((await fetch(`${a}/v1/files/${id}`, { headers: auth })).status).toBe(200);

  expect((await fetch(`${a}/v1/files/${id}`, { method: 'DELETE', headers: auth })).status).toBe(204);
  expect((await fetch(`${b}/v1/files/${id}/content`, { headers: auth })).status).toBe(404);
});

it('uploads are not affected: each machine stores on its own volume and serves its own files', async () => {
  const id = await upload(b, Buffer.from('stored in cdg\n'), 'cdg.txt');
  const res = await fetch(`${b}/v1/files/${id}/content`, { headers: auth });
  expect(res.status).toBe(200);
  expect(await res.text()).toBe('stored in cdg\n');
  expect((await fetch(`${a}/v1/files/${id}/content`, { headers: auth })).headers.get('fly-replay')).toBe('instance=9080e4f5a6b7');
});

it('a report from a file on one machine, requested on the other, is built by the machine that holds the file', async () => {
  const source = await upload(a, Buffer.from('city,visits\nParis,3\nLyon,5\n'), 'visits.csv');
  const res = await fetch(`${b}/v1/reports?wait=20`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ format: 'csv', title: 'Visits', source: { fileId: source } }),
  });
  const task = (await res.json()) as { id: string; status: string; attempts: number; outputs: { id: string }[] };
  expect(res.status).toBe(201);
  expect(task.status).toBe('succeeded');
  // Pinned to iad when queued, so cdg's worker never took it (it would have failed: source_elsewhere).
  const db = new pg.Client({ connectionString: postgres.url });
  await db.connect();
  const { rows } = await db.query('select machine_id from tasks where id = $1', [task.id]);
  await db.end();
  expect(rows).toEqual([{ machine_id: '148e0a1b2c3d' }]);
  expect(task.attempts).toBe(1);
  // The report is stored on the volume it was built on: iad's, where the source is.
  const output = await fetch(`${b}/v1/files/${task.outputs[0].id}/content`, { headers: auth });
  expect(output.headers.get('fly-replay')).toBe('instance=148e0a1b2c3d');
  const built = await fetch(`${a}/v1/files/${task.outputs[0].id}/content`, { headers: auth });
  expect(built.status).toBe(200);
  expect(await built.text()).toContain('Lyon');
});

it('the doctor on one machine checks only the files on its own volume', async () => {
  const onA = await upload(a, Buffer.from('kept on iad\n'), 'a.txt');
  const onB = await upload(b, Buffer.from('kept on cdg\n'), 'b.txt');
  const doctorOn = async (id: string) => {
    const svc = runService(['doctor', '--json'], {
      cwd: dir,
      env: { HOME: dir, STORAGE: 'volume', STORAGE_PATH: path.join(dir, id, 'files'), DATABASE_URL: postgres.url, FLY_MACHINE_ID: id },
    });
    const code = await svc.exited;
    return { code, report: svc.lines[0] as unknown as { ok: boolean; problems: { fileId?: string }[]; summary: { recordsChecked: number } } };
  };
  for (const [id, mine, theirs] of [
    ['148e0a1b2c3d', onA, onB],
    ['9080e4f5a6b7', onB, onA],
  ]) {
    const { code, report } = await doctorOn(id);
    const flagged = report.problems.map((p) => p.fileId);
    // Nothing on this machine is missing, and the other machine's files are not its business.
    expect(flagged).not.toContain(mine);
    expect(flagged).not.toContain(theirs);
    expect(report.summary.recordsChecked).toBeGreaterThan(0);
    expect(code).toBe(report.ok ? 0 : 1);
  }
});
