import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { randomData, sha256 } from '../helpers/streams';
import { listFilesDeep, makeTempDir } from '../helpers/tmp';
import { bearer, createKeyWithCli, freePort, ROOT, ServiceProcess } from '../helpers/service';
import { partHead, RawClient, uploadHead, within } from './raw';

/**
 * Slow and stuck clients against the built server, as deployed (its own HTTP server settings), with
 * few file descriptors. Issue 14: 200 clients sending a byte a second held 424 descriptors, 200
 * pending records and 200 temp files, and with 256 descriptors every normal upload failed with 500.
 */
let dir: string;
let svc: ServiceProcess | undefined;
const clients: RawClient[] = [];

beforeEach(async () => {
  dir = await makeTempDir('stowage-slow-');
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await svc?.stop();
  svc = undefined;
  await fsp.rm(dir, { recursive: true, force: true });
});

/** The built `stowage serve` with at most `maxFiles` open descriptors (ulimit -n), and a key for alice. */
async function startService(extraEnv: Record<string, string> = {}, maxFiles = 256) {
  const port = await freePort();
  const env = {
    HOME: dir,
    STORAGE: 'volume',
    STORAGE_PATH: path.join(dir, 'files'),
    HOST: '127.0.0.1',
    PORT: String(port),
    WORKERS: '0',
    ...extraEnv,
  };
  const key = await createKeyWithCli(env, 'alice', 'write', { cwd: dir });
  const child = spawn('sh', ['-c', `ulimit -n ${maxFiles} && exec "$@"`, 'sh', process.execPath, path.join(ROOT, 'dist/src/cli/index.js'), 'serve'], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  svc = new ServiceProcess(child);
  await svc.waitFor((l) => l.msg === 'listening');
  return { port, token: key.token, pid: child.pid! };
}

/** A well-behaved upload of `data` from `localAddress`. */
function upload(port: number, token: string, data: Buffer, localAddress: string): Promise<{ status: number; body: string }> {
  const boundary = 'normal-client-boundary';
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="normal.bin"\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const body = Buffer.concat([head, data, tail]);
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: '127.0.0.1', port, localAddress, method: 'POST', path: '/v1/files', agent: false,
        headers: { ...bearer(token), 'Content-Type': `multipart/form-data; boundary=${boundary}`, 'Content-Length': body.length },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode!, body: text }));
      },
    );
    req.on('error', (err) => resolve({ status: 0, body: String(err) }));
    req.end(body);
  });
}

async function listAll(port: number, token: string): Promise<{ status: string }[]> {
  const res = await fetch(`http://127.0.0.1:${port}/v1/files?limit=200`, { headers: bearer(token) });
  return ((await res.json()) as { files: { status: string }[] }).files;
}

it('200 clients trickling a byte a second: the caps answer the excess 503 busy and close it, descriptors stay bounded, and a normal upload still succeeds', async () => {
  const { port, token, pid } = await startService();
  let answered = 0;
  for (let i = 0; i < 200; i++) {
    const client = new RawClient(port, { localAddress: '127.0.0.1' });
    clients.push(client);
    void client.response.then((res) => res && answered++);
    void client.write(uploadHead(token, 1024 * 1024 * 1024) + partHead(`slow-${i}.bin`).toString() + 'x');
  }
  const trickle = setInterval(() => clients.forEach((c) => void c.write('x')), 1000);
  try {
    // All but UPLOADS_PER_CLIENT (8) of them are refused at once.
    const deadline = Date.now() + 5000;
    while (answered < 192 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(answered).toBe(192);

    // Another client is served as usual.
    const data = randomData(64 * 1024);
    const res = await upload(port, token, data, '127.0.0.2');
    expect(res.status).toBe(201);
    expect(JSON.parse(res.body).files[0].sha256).toBe(sha256(data));

    // The refused connections are closed as their answers go out.
    const descriptors = () => fs.readdirSync(`/proc/${pid}/fd`).length;
    const settleBy = Date.now() + 3000;
    while (descriptors() >= 64 && Date.now() < settleBy) await new Promise((resolve) => setTimeout(resolve, 50));
    // On failure, what the descriptors are says what holds them.
    const link = (fd: string) => {
      try {
        return fs.readlinkSync(`/proc/${pid}/fd/${fd}`).replace(/\d+/g, 'N');
      } catch {
        return 'closed meanwhile';
      }
    };
    const held = () => fs.readdirSync(`/proc/${pid}/fd`).map(link);
    expect({ count: descriptors(), kinds: descriptors() < 64 ? 'fine' : held().sort() }).toEqual({ count: expect.any(Number), kinds: 'fine' });
    expect(descriptors()).toBeLessThan(64);
    const files = await listAll(port, token);
    expect(files.filter((f) => f.status === 'pending')).toHaveLength(8);
    expect((await listFilesDeep(path.join(dir, 'files'))).length).toBeLessThanOrEqual(9);
  } finally {
    clearInterval(trickle);
  }

  // When they give up, what they held goes.
  for (const c of clients.splice(0)) c.destroy();
  const deadline = Date.now() + 5000;
  while ((await listAll(port, token)).some((f) => f.status === 'pending') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  expect((await listAll(port, token)).map((f) => f.status)).toEqual(['ready']);
  expect(await listFilesDeep(path.join(dir, 'files'))).toHaveLength(1);
});

it('headers that never end are answered 408 and closed after HEADERS_TIMEOUT; an idle keep-alive connection closes after KEEP_ALIVE_TIMEOUT', async () => {
  const { port, token } = await startService({ HEADERS_TIMEOUT: '1s', KEEP_ALIVE_TIMEOUT: '1s' });
  const stuck = new RawClient(port);
  clients.push(stuck);
  const started = Date.now();
  await stuck.write(`GET /v1/files HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nX-Never-Ending: `);
  const res = await within(4000, 'an answer to headers that never end', stuck.response);
  expect(res?.status).toBe(408);
  await within(2000, 'the stuck connection closing', stuck.closed);
  expect(Date.now() - started).toBeGreaterThanOrEqual(900);

  const idle = new RawClient(port);
  clients.push(idle);
  await idle.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  expect((await idle.response)?.status).toBe(200);
  const answeredAt = Date.now();
  await within(4000, 'the idle keep-alive connection closing', idle.closed);
  expect(Date.now() - answeredAt).toBeGreaterThanOrEqual(900);
});
