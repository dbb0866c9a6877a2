import fsp from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import Sqlite from 'better-sqlite3';
import { startS3Server, type S3TestServer } from '../helpers/s3server';
import { s3Env } from '../helpers/s3env';
import { bearer, createKeyWithCli, freePort, runService, type ServiceProcess } from '../helpers/service';
import { randomData, sha256 } from '../helpers/streams';
import { listFilesDeep, makeTempDir } from '../helpers/tmp';

/**
 * The s3rver process SIGKILLed under the built server (SQLite catalog, STORAGE=s3), then started
 * again on the same port and directory, as an S3 endpoint that goes away and comes back:
 * - an upload in progress is answered 503 `store_unavailable` while its client is still sending,
 *   with the network error in the log, and leaves no record;
 * - its multipart upload, which could not be aborted while s3rver was down, is aborted by the
 *   sweep once s3rver is back; the doctor reports such uploads (count, bytes) and `--fix` aborts them;
 * - a download cut mid-stream fails visibly (fewer bytes than Content-Length, the connection
 *   reset) and never marks the file `missing`.
 * s3rver lacks ListMultipartUploads, ListParts and AbortMultipartUpload: the test helper's
 * process answers those (see test/helpers/s3rver-process.js), as S3 does.
 */

const MiB = 1024 * 1024;

let s3: S3TestServer;
let dir: string;
let env: Record<string, string>;
let auth: { Authorization: string };
const running: ServiceProcess[] = [];
const requests: http.ClientRequest[] = [];

beforeEach(async () => {
  s3 = await startS3Server();
  dir = await makeTempDir('stowage-s3-outage-');
  await fsp.mkdir(path.join(dir, 'tmp'));
  // DIRECT_UPLOAD_EXPIRES_S=1 makes the leftover sweep (and so the multipart sweep) run every second.
  env = {
    ...s3Env(s3, { S3_PREFIX: 'stowage/' }),
    TMPDIR: path.join(dir, 'tmp'),
    HOME: dir,
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    DIRECT_UPLOAD_EXPIRES_S: '1',
  };
  auth = bearer(await createKeyWithCli(env, 'alice', 'write', { cwd: dir }));
});
afterEach(async () => {
  for (const req of requests.splice(0)) req.destroy();
  await Promise.all(running.splice(0).map((s) => s.stop()));
  await s3.close();
  await fsp.rm(dir, { recursive: true, force: true });
});

async function serve(): Promise<{ svc: ServiceProcess; base: string }> {
  const port = await freePort();
  const svc = runService(['serve'], { cwd: dir, env: { ...env, PORT: String(port) } });
  running.push(svc);
  await svc.waitFor((l) => l.msg === 'listening');
  return { svc, base: `http://127.0.0.1:${port}` };
}

async function doctor(...args: string[]) {
  const svc = runService(['doctor', ...args], { cwd: dir, env });
  const code = await svc.exited;
  return { code, lines: svc.lines, stderr: svc.stderr };
}

interface DoctorJson {
  problems: { kind: string; key?: string; uploadId?: string; bytes?: number; startedAt?: string; reason: string }[];
  actions: { action: string; problem: { kind: string; uploadId?: string } }[];
  summary: Record<string, number>;
}

/** The catalog's file records, read straight from the SQLite file. */
function records(): { id: string; status: string }[] {
  const db = new Sqlite(path.join(dir, 'data', 'stowage.db'), { readonly: true, fileMustExist: true });
  try {
    return db.prepare('select id, status from files order by created_at').all() as { id: string; status: string }[];
  } finally {
    db.close();
  }
}

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
 * A multipart upload of `total` random bytes, made as they are sent, at most `rate` bytes a second
 * and only as fast as the server reads them, with its Content-Length announced as a browser does.
 * It stops sending once a response arrives; `sent` is what it had written by then.
 */
function pacedUpload(base: string, total: number, rate: number) {
  const boundary = `----stowage${Date.now()}`;
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const req = http.request(`${base}/v1/files`, {
    method: 'POST',
    headers: { ...auth, 'Content-Type': `multipart/form-data; boundary=${boundary}`, 'Content-Length': String(head.length + total + tail.length) },
  });
  requests.push(req);
  const progress = { sent: 0, answered: false };
  const response = new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string; sentBeforeAnswer: number }>((resolve, reject) => {
    req.on('response', (res) => {
      progress.answered = true;
      const sentBeforeAnswer = progress.sent;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body, sentBeforeAnswer }));
    });
    req.on('error', reject);
  });
  // The server closes the connection after answering: writing on is refused (EPIPE), as expected.
  response.catch(() => undefined);
  void (async () => {
    const write = (chunk: Buffer) => new Promise<void>((resolve) => (req.write(chunk) ? resolve() : req.once('drain', resolve)));
    await write(head);
    const started = Date.now();
    const chunkSize = 256 * 1024;
    while (progress.sent < total && !progress.answered && !req.destroyed) {
      const chunk = randomData(Math.min(chunkSize, total - progress.sent));
      await write(chunk);
      progress.sent += chunk.length;
      const ahead = (progress.sent / rate) * 1000 - (Date.now() - started);
      if (ahead > 0) await new Promise((resolve) => setTimeout(resolve, ahead));
    }
    if (!progress.answered && !req.destroyed) req.end(tail);
  })();
  return { response, progress };
}

async function upload(base: string, data: Buffer, name = 'data.bin'): Promise<Response> {
  const form = new FormData();
  form.append('file', new Blob([data]), name);
  return fetch(`${base}/v1/files`, { method: 'POST', body: form, headers: auth });
}

it('s3rver killed mid-upload: 503 store_unavailable while the body is still being sent, no record left, and the sweep aborts the multipart upload once s3rver is back', async () => {
  const { svc, base } = await serve();
  const total = 200 * MiB;
  const { response } = pacedUpload(base, total, 40 * MiB);
  // Its parts are going into the bucket: the upload is well under way.
  await until('two parts stored', async () => (await s3.inProgressUploads()).some((u) => u.parts >= 2));
  await s3.kill();

  const res = await response;
  expect(res.status).toBe(503);
  expect(JSON.parse(res.body).error).toMatchObject({ code: 'store_unavailable' });
  expect(res.headers.connection).toBe('close');
  // Answered while the client was still sending, with most of the 200 MiB not sent.
  expect(res.sentBeforeAnswer).toBeLessThan(total / 2);
  // The log names the network failure behind it, not the teardown of the upload's stream.
  expect(await svc.waitFor((l) => l.msg === 'upload failed')).toMatchObject({ outcome: 'failed', code: 'store_unavailable' });
  const failed = await svc.waitFor((l) => l.msg === 'request failed');
  const err = failed.err as { type: string; message: string; code: string };
  expect(err).toMatchObject({ type: 'StoreUnavailable', code: 'store_unavailable' });
  expect(err.message).toMatch(/ECONNREFUSED|ECONNRESET|socket hang up/);
  expect(JSON.stringify(failed)).not.toMatch(/AbortError/);
  expect(records()).toEqual([]);

  // The process serves on: a new upload is refused the same way, and quickly.
  expect((await fetch(`${base}/healthz`)).status).toBe(200);
  const refused = await upload(base, randomData(1000));
  expect(refused.status).toBe(503);
  expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('store_unavailable');

  // The multipart upload could not be aborted while s3rver was down: its parts are still there.
  const left = await s3.inProgressUploads();
  expect(left).toEqual([{ key: expect.stringMatching(/^stowage\//), parts: expect.any(Number) }]);
  expect(left[0].parts).toBeGreaterThanOrEqual(2);

  await s3.restart();
  const aborted = await svc.waitFor((l) => l.event === 'incomplete_upload' && l.outcome === 'aborted');
  expect(aborted).toMatchObject({ key: left[0].key.slice('stowage/'.length), bytes: expect.any(Number) });
  expect(aborted.bytes).toBeGreaterThanOrEqual(5 * MiB);
  expect(await s3.inProgressUploads()).toEqual([]);
  expect(await s3.objectKeys()).toEqual([]);
  expect(records()).toEqual([]);
  // Nothing of the upload was ever spooled to disk.
  expect(await listFilesDeep(env.TMPDIR)).toEqual([]);

  const data = randomData(6 * MiB);
  const stored = await upload(base, data, 'after.bin');
  expect(stored.status).toBe(201);
  expect(svc.child.exitCode).toBeNull();
}, 60_000);

it('s3rver killed mid-download: the client sees the download cut short, the file stays ready, and downloads whole once s3rver is back', async () => {
  const { svc, base } = await serve();
  const data = randomData(64 * MiB);
  const stored = await upload(base, data, 'big.bin');
  expect(stored.status).toBe(201);
  const { id } = ((await stored.json()) as { files: { id: string }[] }).files[0];

  // The client reads the first bytes, then stops reading while s3rver is killed, then reads on.
  const req = http.get(`${base}/v1/files/${id}/content`, { headers: auth });
  requests.push(req);
  const outcome = new Promise<{ length: number; received: number; aborted: boolean; error?: string; ended: boolean }>((resolve) => {
    req.on('response', (res) => {
      let received = 0;
      let aborted = false;
      let paused = false;
      res.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (!paused && received >= MiB) {
          paused = true;
          res.pause();
          void s3.kill().then(() => res.resume());
        }
      });
      res.on('aborted', () => (aborted = true));
      const done = (error?: Error) => resolve({ length: Number(res.headers['content-length']), received, aborted, error: error?.message, ended: res.complete });
      res.on('end', () => done());
      res.on('error', done);
      res.on('close', () => done());
    });
  });
  const cut = await outcome;
  expect(cut.length).toBe(data.length);
  expect(cut.received).toBeLessThan(data.length);
  expect(cut.ended).toBe(false);
  expect(cut.aborted || cut.error !== undefined).toBe(true);
  // The log says the store's stream broke (not a client that went away).
  expect(await svc.waitFor((l) => l.msg === 'download stream failed')).toMatchObject({ fileId: id, err: expect.objectContaining({ message: expect.any(String) }) });

  // Not missing: the bytes are in a store that is away, not gone.
  expect(records()).toEqual([{ id, status: 'ready' }]);
  const during = await fetch(`${base}/v1/files/${id}/content`, { headers: auth });
  expect(during.status).toBe(503);
  expect(((await during.json()) as { error: { code: string } }).error.code).toBe('store_unavailable');
  expect(records()).toEqual([{ id, status: 'ready' }]);

  await s3.restart();
  const whole = await fetch(`${base}/v1/files/${id}/content`, { headers: auth });
  expect(whole.status).toBe(200);
  expect(sha256(Buffer.from(await whole.arrayBuffer()))).toBe(sha256(data));
}, 60_000);

it('the doctor reports incomplete multipart uploads past the grace period, with their bytes, never a live one; --fix aborts them and exits 0', async () => {
  const first = await serve();
  const failing = pacedUpload(first.base, 200 * MiB, 40 * MiB);
  await until('two parts stored', async () => (await s3.inProgressUploads()).some((u) => u.parts >= 2));
  await s3.kill();
  expect((await failing.response).status).toBe(503);
  // The server that knew the upload was abandoned stops before s3rver is back: only the doctor is left to find it.
  await first.svc.stop();
  await s3.restart();
  const [left] = await s3.inProgressUploads();
  const key = left.key.slice('stowage/'.length);

  // Younger than the default grace (1 h): in flight, as far as the doctor can tell.
  expect((await doctor('--json')).code).toBe(0);

  // An upload in progress is never reported, whatever its age (its record is pending: at a grace
  // of 0 s the doctor calls that record stale, as it always has, but leaves its parts alone).
  const second = await serve();
  const live = pacedUpload(second.base, 30 * MiB, 3 * MiB);
  await until('a part of the live upload', async () => (await s3.inProgressUploads()).some((u) => u.key !== left.key && u.parts >= 1));

  const found = await doctor('--json', '--grace', '0s');
  expect(found.code).toBe(1);
  const report = found.lines[0] as unknown as DoctorJson;
  expect(report.problems.filter((p) => p.kind === 'incomplete_upload')).toEqual([
    {
      kind: 'incomplete_upload',
      store: 's3',
      key,
      uploadId: expect.any(String),
      startedAt: expect.any(String),
      bytes: expect.any(Number),
      reason: expect.stringContaining('no upload in progress writes it'),
    },
  ]);
  const { bytes, uploadId } = report.problems.find((p) => p.kind === 'incomplete_upload')!;
  expect(bytes! % (5 * MiB)).toBe(0);
  expect(bytes).toBeGreaterThanOrEqual(5 * MiB);
  expect(report.summary).toMatchObject({ incompleteUploads: 1, incompleteUploadBytes: bytes });

  const text = await doctor('--grace', '0s');
  const out = text.lines.map((l) => l.msg);
  expect(out).toContain('incomplete multipart uploads');
  expect(out).toContainEqual(`  incomplete upload: multipart upload ${uploadId} at s3:${key}: begun ${report.problems.find((p) => p.kind === 'incomplete_upload')!.startedAt} with ${bytes} bytes of parts; no upload in progress writes it`);
  expect(out[out.length - 1]).toMatch(/, incomplete uploads: 1 \(\d+\.\d MiB\);/);

  // The live upload completes, untouched.
  expect((await live.response).status).toBe(201);

  const fixed = await doctor('--json', '--fix', '--grace', '0s');
  expect(fixed.code).toBe(0);
  const fixReport = fixed.lines[0] as unknown as DoctorJson;
  expect(fixReport.actions).toEqual([{ action: 'aborted', problem: expect.objectContaining({ kind: 'incomplete_upload', uploadId }) }]);
  expect(fixReport.summary).toMatchObject({ incompleteUploads: 1, aborted: 1 });
  expect(await s3.inProgressUploads()).toEqual([]);
  expect((await doctor('--json', '--grace', '0s')).code).toBe(0);
}, 90_000);
