import fsp from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import Sqlite from 'better-sqlite3';
import { bearer, createKeyWithCli, freePort, runService, type ServiceProcess } from '../helpers/service';
import { randomData } from '../helpers/streams';
import { listFilesDeep, makeTempDir } from '../helpers/tmp';

/**
 * kill -9 of the web and worker processes mid-operation (the built CLI, one volume and one SQLite
 * catalog, as deployed on one host): what a dead process leaves (a temp file in STORAGE_PATH/.tmp,
 * a `pending` record, a copy of a report's source) is reported by `stowage doctor`, removed by
 * `--fix`, and swept by the next process to start or by a live one sharing the volume; a live
 * upload of another instance is never touched.
 */

let dir: string;
let env: Record<string, string>;
let auth: { Authorization: string };
const running: ServiceProcess[] = [];
const pendingRequests: http.ClientRequest[] = [];

beforeEach(async () => {
  dir = await makeTempDir('stowage-crash-');
  await fsp.mkdir(path.join(dir, 'tmp'));
  // TMPDIR is where report sources are copied to; HOME keeps npm and the like out of the real one.
  env = { STORAGE: 'volume', STORAGE_PATH: path.join(dir, 'files'), TMPDIR: path.join(dir, 'tmp'), HOME: dir, HOST: '127.0.0.1', LOG_LEVEL: 'info' };
  auth = bearer(await createKeyWithCli(env, 'alice', 'write', { cwd: dir }));
});
afterEach(async () => {
  for (const req of pendingRequests.splice(0)) req.destroy();
  await Promise.all(running.splice(0).map((s) => s.stop()));
  await fsp.rm(dir, { recursive: true, force: true });
});

async function serve(extra: Record<string, string> = {}): Promise<{ svc: ServiceProcess; base: string }> {
  const port = await freePort();
  const svc = runService(['serve'], { cwd: dir, env: { ...env, PORT: String(port), ...extra } });
  running.push(svc);
  await svc.waitFor((l) => l.msg === 'listening');
  return { svc, base: `http://127.0.0.1:${port}` };
}

function worker(extra: Record<string, string> = {}): ServiceProcess {
  const svc = runService(['worker'], { cwd: dir, env: { ...env, ...extra } });
  running.push(svc);
  return svc;
}

async function doctor(...args: string[]) {
  const svc = runService(['doctor', '--json', ...args], { cwd: dir, env });
  const code = await svc.exited;
  return { code, report: svc.lines[0] as unknown as DoctorJson, stderr: svc.stderr };
}

interface DoctorJson {
  ok: boolean;
  problems: { kind: string; fileId?: string; path?: string; bytes?: number; modifiedAt?: string; reason: string }[];
  actions: { action: string; problem: { kind: string; path?: string; fileId?: string } }[];
  summary: Record<string, number>;
}

/** The catalog's file records, read straight from the SQLite file. */
function records(): { id: string; status: string; status_message: string | null }[] {
  const db = new Sqlite(path.join(dir, 'stowage.db'), { readonly: true, fileMustExist: true });
  try {
    return db.prepare('select id, status, status_message from files order by created_at').all() as { id: string; status: string; status_message: string | null }[];
  } finally {
    db.close();
  }
}

const tempFiles = async () => {
  const tempDir = path.join(dir, 'files', '.tmp');
  const names = await fsp.readdir(tempDir).catch(() => [] as string[]);
  // A file listed may be gone by the time it is looked at (a sweep, a finished upload).
  const files = await Promise.all(
    names.map(async (name) => {
      const stat = await fsp.stat(path.join(tempDir, name)).catch(() => undefined);
      return stat && { name, path: path.join(tempDir, name), size: stat.size };
    }),
  );
  return files.filter((f) => f !== undefined);
};

/** Waits until `check` returns something truthy, polling; fails after `ms`. */
async function until<T>(what: string, check: () => Promise<T | undefined | false>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * A multipart upload sent in part: the headers and `firstBytes` of the file now, the rest when
 * `finish` is called (never, if the server dies first).
 */
function slowUpload(base: string, firstBytes: number) {
  const boundary = `----stowage${Date.now()}`;
  const req = http.request(`${base}/v1/files`, {
    method: 'POST',
    headers: { ...auth, 'Content-Type': `multipart/form-data; boundary=${boundary}`, 'Transfer-Encoding': 'chunked' },
  });
  pendingRequests.push(req);
  const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
  });
  response.catch(() => undefined);
  req.write(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`);
  req.write(randomData(firstBytes));
  return {
    response,
    finish: () => {
      req.end(`\r\n--${boundary}--\r\n`);
      return response;
    },
  };
}

/** The temp file of an upload in progress, once `bytes` of it are written. */
const growingTemp = (bytes: number) => until(`a temp file of ${bytes} bytes`, async () => (await tempFiles()).find((f) => f.size >= bytes));

const killed = async (svc: ServiceProcess) => {
  svc.child.kill('SIGKILL');
  expect(await svc.exited).toBeNull();
};

it('a web process killed mid-upload: the doctor reports the pending record and the temp file, and the next server to start discards both', async () => {
  const first = await serve();
  slowUpload(first.base, 4 * 1024 * 1024);
  const temp = await growingTemp(4 * 1024 * 1024);
  const [record] = await until('the pending record', async () => records().length > 0 && records());
  expect(record.status).toBe('pending');
  await killed(first.svc);

  const before = await doctor();
  expect(before.code).toBe(1);
  expect(before.report.problems).toEqual(
    expect.arrayContaining([
      expect.objectContaining({ kind: 'stale_pending', fileId: record.id, reason: expect.stringMatching(/no longer running/) }),
      expect.objectContaining({ kind: 'temp_leftover', path: temp.path, bytes: expect.any(Number), reason: expect.stringMatching(/no longer running/) }),
    ]),
  );
  expect(before.report.problems.find((p) => p.kind === 'temp_leftover')!.bytes).toBeGreaterThanOrEqual(4 * 1024 * 1024);
  expect(before.report.summary).toMatchObject({ stalePending: 1, tempLeftovers: 1 });
  expect(before.report.summary.leftoverBytes).toBeGreaterThanOrEqual(4 * 1024 * 1024);
  const text = runService(['doctor'], { cwd: dir, env });
  await text.exited;
  const out = text.lines.map((l) => l.msg);
  expect(out).toContain('left behind by processes that are no longer running');
  expect(out).toContainEqual(expect.stringMatching(new RegExp(`^ {2}temp leftover: temp file ${temp.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: \\d+ bytes, last written .*; its process \\(.*\\) is no longer running$`)));
  expect(out[out.length - 1]).toMatch(/stale pending: 1, .*temp leftovers: 1, source leftovers: 0 \(4\.\d MiB\); marked missing: 0, marked failed: 0/);

  const second = await serve();
  await second.svc.waitFor((l) => l.event === 'interrupted_upload' && l.fileId === record.id);
  await second.svc.waitFor((l) => l.event === 'leftover_removed' && l.path === temp.path);
  expect(records()).toEqual([]);
  expect(await tempFiles()).toEqual([]);
  const gone = await fetch(`${second.base}/v1/files/${record.id}`, { headers: auth });
  expect(gone.status).toBe(404);
  // And it still takes uploads.
  const form = new FormData();
  form.append('file', new Blob([randomData(1000)]), 'after.bin');
  expect((await fetch(`${second.base}/v1/files`, { method: 'POST', body: form, headers: auth })).status).toBe(201);
  expect((await doctor()).code).toBe(0);
});

it('doctor --fix removes the temp file a killed upload left, and marks its record failed', async () => {
  const first = await serve();
  slowUpload(first.base, 2 * 1024 * 1024);
  const temp = await growingTemp(2 * 1024 * 1024);
  await killed(first.svc);

  const fixed = await doctor('--fix');
  expect(fixed.report.actions).toEqual(
    expect.arrayContaining([
      { action: 'removed', problem: expect.objectContaining({ kind: 'temp_leftover', path: temp.path }) },
      { action: 'marked_failed', problem: expect.objectContaining({ kind: 'stale_pending' }) },
    ]),
  );
  expect(fixed.report.summary).toMatchObject({ removed: 1, markedFailed: 1 });
  expect(await tempFiles()).toEqual([]);
  expect(records()).toEqual([expect.objectContaining({ status: 'failed', status_message: 'The upload did not finish. Please re-upload your file.' })]);
  expect((await doctor()).code).toBe(0);
});

it('a worker killed while reading a report source: the doctor reports the source copy, and the next worker removes it at start-up and builds the report', async () => {
  const web = await serve({ WORKERS: '0' });
  const csv = ['id,name,amount', ...Array.from({ length: 300_000 }, (_, i) => `${i},name ${i},${i * 1.5}`)].join('\n');
  const form = new FormData();
  form.append('file', new Blob([csv], { type: 'text/csv' }), 'big.csv');
  const source = ((await (await fetch(`${web.base}/v1/files`, { method: 'POST', body: form, headers: auth })).json()) as { files: { id: string }[] }).files[0];
  const queued = await fetch(`${web.base}/v1/reports`, {
    method: 'POST',
    headers: { ...auth, 'Content-Type': 'application/json' },
    body: JSON.stringify({ format: 'csv', title: 'Big', source: { fileId: source.id } }),
  });
  expect(queued.status).toBe(202);

  const doomed = worker({ TASK_LEASE_SECONDS: '1' });
  const sourceCopies = async () => (await listFilesDeep(env.TMPDIR)).filter((f) => path.basename(f) === 'source');
  const copy = await until('the copy of the source', async () => {
    const [file] = await sourceCopies();
    return file && (await fsp.stat(path.join(env.TMPDIR, file))).size === Buffer.byteLength(csv) && file;
  });
  await killed(doomed);
  expect(await sourceCopies()).toEqual([copy]);

  const report = await doctor();
  expect(report.code).toBe(1);
  const leftover = report.report.problems.find((p) => p.kind === 'source_leftover');
  expect(leftover).toMatchObject({ bytes: Buffer.byteLength(csv), reason: expect.stringMatching(/no longer running/) });
  expect(path.join(env.TMPDIR, copy).startsWith(`${leftover!.path}${path.sep}`)).toBe(true);
  expect(report.report.summary).toMatchObject({ sourceLeftovers: 1 });

  const survivor = worker({ TASK_LEASE_SECONDS: '1' });
  await survivor.waitFor((l) => l.msg === 'task finished' && l.outcome === 'succeeded');
  expect(await sourceCopies()).toEqual([]);
  expect((await listFilesDeep(env.TMPDIR)).filter((f) => !f.startsWith(`stowage${path.sep}files`))).toEqual([]);
});

it('two servers share a volume and a catalog: sweeps never touch the other one\'s live upload, and a live one sweeps what a killed one left', async () => {
  // DIRECT_UPLOAD_EXPIRES_S=1 makes each server sweep every second; each sweep is logged at debug.
  const a = await serve({ DIRECT_UPLOAD_EXPIRES_S: '1' });
  const b = await serve({ DIRECT_UPLOAD_EXPIRES_S: '1', LOG_LEVEL: 'debug' });
  const live = slowUpload(a.base, 1024 * 1024);
  const temp = await growingTemp(1024 * 1024);
  // Several of b's sweeps (and one at a restart of b) pass while a's upload is in progress.
  const sweeps = b.svc.lines.filter((l) => l.msg === 'leftover sweep').length;
  await until('three more sweeps by b', async () => b.svc.lines.filter((l) => l.msg === 'leftover sweep').length >= sweeps + 3);
  await b.svc.stop();
  const b2 = await serve({ DIRECT_UPLOAD_EXPIRES_S: '1', LOG_LEVEL: 'debug' });
  await b2.svc.waitFor((l) => l.msg === 'leftover sweep');
  expect((await tempFiles()).map((f) => f.name)).toEqual([temp.name]);
  expect(records().map((r) => r.status)).toEqual(['pending']);
  const done = await live.finish();
  expect(done.status).toBe(201);

  slowUpload(a.base, 1024 * 1024);
  await growingTemp(1024 * 1024);
  const interrupted = await until('the second pending record', async () => records().find((r) => r.status === 'pending'));
  await killed(a.svc);
  await b2.svc.waitFor((l) => l.event === 'interrupted_upload' && l.fileId === interrupted.id);
  await until('the temp file to go', async () => (await tempFiles()).length === 0);
  expect(records().map((r) => r.status)).toEqual(['ready']);
});
