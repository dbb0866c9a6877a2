import { createHash } from 'node:crypto';
import fsp from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { randomData, sha256 } from '../helpers/streams';
import { listFilesDeep, makeTempDir } from '../helpers/tmp';
import { bearer, createKeyWithCli, freePort, installReadOnlyApp, runService, type ServiceProcess, writableDir } from '../helpers/service';

let base: string;
let app: Awaited<ReturnType<typeof installReadOnlyApp>>;
const running: ServiceProcess[] = [];

beforeAll(async () => {
  base = await makeTempDir('stowage-proc-');
  app = await installReadOnlyApp(base);
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop()));
});
afterAll(async () => {
  await fsp.rm(base, { recursive: true, force: true });
});

/** Sends a multipart upload whose body is released in two halves, `between` running in the middle. */
function slowUpload(port: number, token: string, data: Buffer, between: () => Promise<void>): Promise<{ status: number; body: string }> {
  const boundary = 'stowage-test-boundary';
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="slow.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/v1/files',
        headers: { ...bearer(token), 'Content-Type': `multipart/form-data; boundary=${boundary}`, 'Content-Length': head.length + data.length + tail.length },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      },
    );
    req.on('error', reject);
    const half = Math.floor(data.length / 2);
    req.write(Buffer.concat([head, data.subarray(0, half)]));
    between().then(() => req.end(Buffer.concat([data.subarray(half), tail])), reject);
  });
}

describe('the built service as a container runs it', () => {
  it('starts with a read-only cwd and HOME on STORAGE=tmp and PORT from the environment; uploads and downloads over HTTP', async () => {
    const tmp = await writableDir(path.join(base, 'tmp1'), app.asUser);
    const port = await freePort();
    const env = { HOME: app.appDir, STORAGE: 'tmp', TMPDIR: tmp, PORT: String(port), HOST: '127.0.0.1' };
    const key = await createKeyWithCli(env, 'alice', 'write', app);
    const svc = runService(['serve'], { appDir: app.appDir, asUser: app.asUser, env });
    running.push(svc);
    const listening = await svc.waitFor((l) => l.msg === 'listening');
    expect(listening).toMatchObject({ port, storage: 'tmp', location: path.join(tmp, 'stowage', 'files') });
    // A key exists, so loopback is no reason to let a request without one in.
    const anonymous = await fetch(`http://127.0.0.1:${port}/v1/files`);
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as { error: { code: string } }).error.code).toBe('unauthenticated');

    const data = randomData(3 * 1024 * 1024);
    const form = new FormData();
    form.append('file', new Blob([data]), 'data.bin');
    const up = await fetch(`http://127.0.0.1:${port}/v1/files`, { method: 'POST', body: form, headers: bearer(key) });
    expect(up.status).toBe(201);
    const { files } = (await up.json()) as { files: { id: string; sha256: string }[] };
    expect(files[0].sha256).toBe(sha256(data));

    const down = await fetch(`http://127.0.0.1:${port}/v1/files/${files[0].id}/content`, { headers: bearer(key) });
    expect(down.status).toBe(200);
    expect(sha256(Buffer.from(await down.arrayBuffer()))).toBe(sha256(data));
    expect(await listFilesDeep(app.appDir).then((f) => f.filter((n) => !/^(dist|public|node_modules|package\.json)/.test(n)))).toEqual([]);
  });

  it('lets an in-flight upload finish after SIGTERM, then exits 0', async () => {
    const tmp = await writableDir(path.join(base, 'tmp2'), app.asUser);
    const port = await freePort();
    const env = { HOME: app.appDir, STORAGE: 'tmp', TMPDIR: tmp, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'debug' };
    const key = await createKeyWithCli(env, 'alice', 'write', app);
    const svc = runService(['serve'], { appDir: app.appDir, asUser: app.asUser, env });
    running.push(svc);
    await svc.waitFor((l) => l.msg === 'listening');

    const data = randomData(8 * 1024 * 1024);
    const result = await slowUpload(port, key.token, data, async () => {
      await svc.waitFor((l) => l.msg === 'upload started');
      svc.child.kill('SIGTERM');
      await svc.waitFor((l) => l.msg === 'shutting down: finishing in-flight requests');
    });
    expect(result.status).toBe(201);
    const [file] = JSON.parse(result.body).files;
    expect(file.sha256).toBe(createHash('sha256').update(data).digest('hex'));
    expect(await svc.exited).toBe(0);
    expect(svc.lines.map((l) => l.msg)).toContain('stopped');
    // The blob is in the store, complete, and no temp file is left.
    const stored = await listFilesDeep(path.join(tmp, 'stowage', 'files'));
    expect(stored).toEqual([`${file.id.slice(0, 2)}/${file.id}`]);
  });
});

describe('startup refuses a bad environment with a clear message', () => {
  it('exits 1 when STORAGE_PATH is not writable', async () => {
    const readOnly = path.join(base, 'readonly');
    await fsp.mkdir(readOnly, { mode: 0o755 });
    if (app.asUser.uid === undefined) await fsp.chmod(readOnly, 0o555);
    const target = path.join(readOnly, 'files');
    const svc = runService(['serve'], {
      appDir: app.appDir,
      asUser: app.asUser,
      env: { HOME: app.appDir, STORAGE: 'volume', STORAGE_PATH: target, PORT: String(await freePort()) },
    });
    expect(await svc.exited).toBe(1);
    expect(svc.stderr).toContain(`  STORAGE_PATH: ${target} is not writable (set STORAGE_PATH to a writable directory, or STORAGE=tmp)`);
    expect(svc.lines.map((l) => l.msg)).not.toContain('listening');
  });

  it('exits 1 with one line per invalid variable', async () => {
    const svc = runService(['serve'], {
      appDir: app.appDir,
      asUser: app.asUser,
      env: { HOME: app.appDir, STORAGE: 'disk', PORT: 'eighty', MAX_UPLOAD_BYTES: 'lots' },
    });
    expect(await svc.exited).toBe(1);
    expect(svc.stderr[0]).toBe('stowage: cannot start');
    expect(svc.stderr.slice(1)).toEqual([
      expect.stringMatching(/^ {2}PORT: "eighty" must be a port number/),
      expect.stringMatching(/^ {2}STORAGE: "disk" .*"memory"\|"tmp"\|"volume"/),
      '  MAX_UPLOAD_BYTES: "lots" lots is not a size (use bytes, or e.g. 10mb, 1gb)',
    ]);
  });
});

describe('stowage migrate', () => {
  it('applies the schema once, then reports it up to date', async () => {
    const dataDir = await writableDir(path.join(base, 'migrate'), app.asUser);
    const env = { HOME: app.appDir, STORAGE: 'volume', STORAGE_PATH: path.join(dataDir, 'files') };
    const first = runService(['migrate'], { appDir: app.appDir, asUser: app.asUser, env });
    expect(await first.exited).toBe(0);
    expect(first.lines[0].msg).toMatch(/^applied: 2026-11-23-001-files/);
    const second = runService(['migrate'], { appDir: app.appDir, asUser: app.asUser, env });
    expect(await second.exited).toBe(0);
    expect(second.lines[0].msg).toBe('schema is up to date');
    expect((await fsp.readdir(dataDir)).sort()).toContain('stowage.db');
  });

  it('several processes starting at once on a new SQLite catalog apply the schema once between them', async () => {
    // A web and a worker process (or two CLI commands) on a fresh volume each run the migrations
    // at start; before the migration lock, about one pair in three failed with "table already exists".
    for (let round = 0; round < 3; round++) {
      const dataDir = await writableDir(path.join(base, `migrate-race-${round}`), app.asUser);
      const env = { HOME: app.appDir, STORAGE: 'volume', STORAGE_PATH: path.join(dataDir, 'files') };
      const runs = Array.from({ length: 4 }, () => runService(['migrate'], { appDir: app.appDir, asUser: app.asUser, env }));
      const codes = await Promise.all(runs.map((r) => r.exited));
      expect({ round, codes, output: runs.flatMap((r) => r.lines.map((l) => l.msg)) }).toEqual({
        round,
        codes: [0, 0, 0, 0],
        output: expect.arrayContaining(['schema is up to date']),
      });
      expect(runs.filter((r) => /^applied: /.test(String(r.lines[0]?.msg)))).toHaveLength(1);
    }
  });
});
