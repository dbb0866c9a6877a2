import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';
import { bearer, freePort, ROOT, type CliKey, type ServiceProcess } from '../helpers/service';
import { makeTempDir } from '../helpers/tmp';
import { OFFLOAD_ORIGIN, startOffloadingService } from '../helpers/offload';

/**
 * DOWNLOAD_OFFLOAD=sendfile behind Debian's Caddy running deploy/caddy/Caddyfile (only its
 * address and upstream changed): the built `serve` checks the API key and sets the headers, Caddy
 * sends the file that X-Sendfile names, and its ranges.
 */

let dir: string;
let port: number;
let stowageUrl: string;
let caddyUrl: string;
let caddy: ChildProcess;
let caddyExited: Promise<unknown>;
let svc: ServiceProcess;
let alice: CliKey;
let bob: CliKey;
const data = randomBytes(2 * 1024 ** 2 + 5);
let file: { id: string; sha256: string; links: { content: string } };

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** Headers as a plain object, without those of the hop and those Caddy sets itself for the file. */
function endToEnd(res: Response): Record<string, string> {
  const own = ['date', 'connection', 'keep-alive', 'server', 'content-length', 'x-request-id', 'etag', 'last-modified', 'accept-ranges'];
  return Object.fromEntries([...res.headers].filter(([name]) => !own.includes(name)));
}

/** deploy/caddy/Caddyfile with its `# templated` lines pointed at this test's ports. */
function caddyfile(port: number, upstreamPort: number): string {
  let templated = 0;
  const text = fs
    .readFileSync(path.join(ROOT, 'deploy/caddy/Caddyfile'), 'utf8')
    .split('\n')
    .map((line) => {
      if (!line.includes('# templated')) return line;
      templated += 1;
      if (line.startsWith(':80 {')) return `http://127.0.0.1:${port} {`;
      if (line.trim().startsWith('reverse_proxy stowage:3000 {')) return `\treverse_proxy 127.0.0.1:${upstreamPort} {`;
      throw new Error(`deploy/caddy/Caddyfile: unexpected templated line: ${line}`);
    })
    .join('\n');
  if (templated !== 2) throw new Error(`deploy/caddy/Caddyfile: expected 2 templated lines, found ${templated}`);
  return text;
}

beforeAll(async () => {
  dir = await makeTempDir();
  ({ svc, url: stowageUrl, port, alice, bob } = await startOffloadingService(dir, 'sendfile'));

  const caddyPort = await freePort();
  caddyUrl = `http://127.0.0.1:${caddyPort}`;
  const conf = path.join(dir, 'Caddyfile');
  await fsp.writeFile(conf, caddyfile(caddyPort, port));
  // Everything Caddy keeps (its autosaved config, its data) goes under the test's directory.
  caddy = spawn('/usr/bin/caddy', ['run', '--config', conf, '--adapter', 'caddyfile'], {
    env: { PATH: process.env.PATH, HOME: dir, XDG_CONFIG_HOME: path.join(dir, 'config'), XDG_DATA_HOME: path.join(dir, 'data') },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  caddyExited = new Promise((resolve) => caddy.once('exit', resolve));
  const log: string[] = [];
  await new Promise<void>((resolve, reject) => {
    readline.createInterface({ input: caddy.stderr! }).on('line', (line) => {
      log.push(line);
      if (line.includes('serving initial configuration')) resolve();
    });
    void caddyExited.then(() => reject(new Error(`caddy exited before it started:\n${log.join('\n')}`)));
  });

  const form = new FormData();
  form.append('file', new Blob([data]), 'data.bin');
  const res = await fetch(`${caddyUrl}/v1/files`, { method: 'POST', headers: bearer(alice), body: form });
  expect(res.status).toBe(201);
  file = ((await res.json()) as { files: (typeof file)[] }).files[0];
});

afterAll(async () => {
  if (caddy?.exitCode === null) {
    caddy.kill('SIGTERM');
    await caddyExited;
  }
  await svc?.stop();
  if (dir) await fsp.rm(dir, { recursive: true, force: true });
});

it("sends the file through Caddy byte for byte with stowage's headers (stowage itself sends none of the bytes)", async () => {
  const headers = { ...bearer(alice), Origin: OFFLOAD_ORIGIN };
  const res = await fetch(`${caddyUrl}${file.links.content}`, { headers });
  expect(res.status).toBe(200);
  expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(file.sha256);
  expect(res.headers.get('content-length')).toBe(String(data.length));

  const upstream = await fetch(`${stowageUrl}${file.links.content}`, { headers });
  expect(await upstream.text()).toBe('');
  expect(upstream.headers.get('x-sendfile')).toBe(path.join(dir, 'files', file.id.slice(0, 2), file.id));
  const { 'x-sendfile': _path, ...expected } = endToEnd(upstream);
  expect(endToEnd(res)).toEqual(expected);
  expect(expected).toMatchObject({
    'content-disposition': 'attachment; filename=data.bin',
    'content-security-policy': 'sandbox',
    'access-control-allow-origin': OFFLOAD_ORIGIN,
  });
});

it('serves ranges, and conditional requests by its own ETag', async () => {
  const get = (headers: Record<string, string>) => fetch(`${caddyUrl}${file.links.content}`, { headers: { ...bearer(alice), ...headers } });
  const part = await get({ Range: 'bytes=1000000-1999999' });
  expect([part.status, part.headers.get('content-range')]).toEqual([206, `bytes 1000000-1999999/${data.length}`]);
  expect(Buffer.from(await part.arrayBuffer()).equals(data.subarray(1000000, 2000000))).toBe(true);

  const etag = (await get({})).headers.get('etag')!;
  expect((await get({ 'If-None-Match': etag, 'Cache-Control': 'max-age=0' })).status).toBe(304);
  const matching = await get({ Range: 'bytes=0-9', 'If-Range': etag });
  expect([matching.status, (await matching.arrayBuffer()).byteLength]).toEqual([206, 10]);
});

it('leaves the checks to stowage: no credentials 401, another owner 404', async () => {
  const anonymous = await fetch(`${caddyUrl}${file.links.content}`);
  expect([anonymous.status, ((await anonymous.json()) as { error: { code: string } }).error.code]).toEqual([401, 'unauthenticated']);
  const others = await fetch(`${caddyUrl}${file.links.content}`, { headers: bearer(bob) });
  expect([others.status, ((await others.json()) as { error: { code: string } }).error.code]).toEqual([404, 'not_found']);
});

it('sends no file a client names: X-Sendfile in a request does nothing', async () => {
  const res = await fetch(`${caddyUrl}/healthz`, { headers: { 'X-Sendfile': '/etc/passwd' } });
  expect(res.status).toBe(200);
  expect(await res.text()).not.toContain('root:');
});
