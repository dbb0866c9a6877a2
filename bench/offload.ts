import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fsp from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startNginx } from '../test/helpers/nginx';
import { createKeyWithCli, freePort, runService, type ServiceProcess } from '../test/helpers/service';
import { multipart, peakRssMb, request, ROOT, table } from './harness';

const execFileAsync = promisify(execFile);
const GiB = 1024 ** 3;
const BLOCK = randomBytes(1024 * 1024);
const SMALL_SIZE = 16 * 1024;
const SMALL_COUNT = 2000;
const SMALL_CONCURRENCY = 16;

interface Side {
  name: string;
  url: (id: string) => string;
  headers: Record<string, string>;
}

/**
 * One download to /dev/null timed by curl itself: a C client, so what the client costs is small
 * and the same for every side.
 */
async function curlMbps(side: Side, id: string): Promise<number> {
  const headers = Object.entries(side.headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]);
  const { stdout } = await execFileAsync('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{size_download} %{time_total}', ...headers, side.url(id)]);
  const [code, size, seconds] = stdout.trim().split(' ');
  if (code !== '200' || Number(size) !== GiB) throw new Error(`${side.name}: ${stdout}`);
  return GiB / 1024 / 1024 / Number(seconds);
}

/** `SMALL_COUNT` downloads, `SMALL_CONCURRENCY` at a time over keep-alive connections: files/s. */
async function smallFilesPerSecond(side: Side, ids: string[]): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: SMALL_CONCURRENCY });
  let next = 0;
  const reader = async () => {
    while (next < ids.length) {
      const url = new URL(side.url(ids[next++]));
      const res = await request({ host: url.hostname, port: url.port, path: url.pathname, headers: side.headers, agent });
      if (res.status !== 200 || res.bytes !== SMALL_SIZE) throw new Error(`${side.name}: ${res.status}, ${res.bytes} bytes`);
    }
  };
  const t = performance.now();
  await Promise.all(Array.from({ length: SMALL_CONCURRENCY }, reader));
  const ms = performance.now() - t;
  agent.destroy();
  return ids.length / (ms / 1000);
}

async function upload(port: number, token: string, name: string, size: number, agent?: http.Agent): Promise<string> {
  const form = multipart(name, size, BLOCK.subarray(0, Math.min(size, BLOCK.length)));
  const res = await request({
    host: '127.0.0.1', port, method: 'POST', path: '/v1/files', agent,
    headers: { authorization: `Bearer ${token}`, 'content-type': form.contentType, 'content-length': form.length },
    body: form.body(),
  });
  if (res.status !== 201) throw new Error(`upload failed: ${res.status} ${res.body}`);
  return (JSON.parse(res.body) as { files: { id: string }[] }).files[0].id;
}

/** The child processes of `pid` (nginx's master: its worker). */
async function childrenOf(pid: number): Promise<number[]> {
  const text = await fsp.readFile(`/proc/${pid}/task/${pid}/children`, 'utf8');
  return text.trim().split(/\s+/).filter(Boolean).map(Number);
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/**
 * Downloads through Debian's nginx running deploy/nginx/stowage.conf in front of the built
 * `serve` with DOWNLOAD_OFFLOAD=nginx (stowage checks the API key, nginx sends the bytes), against
 * the same nginx serving the same file from a plain location (no stowage at all), and against a
 * second `serve` on the same volume and catalog without offload, sending the bytes itself. The
 * sides take turns going first; figures are medians of `repeats` (every run printed).
 */
export async function runOffloadBench(repeats = 5): Promise<void> {
  console.log(`\n## Downloads handed to nginx (DOWNLOAD_OFFLOAD=nginx), medians of ${repeats}`);
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'stowage-bench-'));
  // nginx's worker runs as nobody (as root): it reaches the files through here.
  await fsp.chmod(dir, 0o755);
  const filesDir = path.join(dir, 'files');
  const [port, plainPort, directPort] = [await freePort(), await freePort(), await freePort()];
  const env = {
    PORT: String(port), HOST: '127.0.0.1', STORAGE: 'volume', STORAGE_PATH: filesDir, DATABASE_PATH: path.join(dir, 'stowage.db'),
    MAX_UPLOAD_BYTES: '2gb', DOWNLOAD_OFFLOAD: 'nginx', TRUST_PROXY: '1', LOG_LEVEL: 'info',
    SECRET_KEY: randomBytes(48).toString('base64'), UPLOADS_PER_CLIENT: '64',
  };
  const key = await createKeyWithCli(env, 'bench', 'write', { appDir: ROOT, cwd: dir });
  const services: ServiceProcess[] = [];
  let nginx: Awaited<ReturnType<typeof startNginx>> | undefined;
  try {
    // The files are uploaded by a process of their own, so the peak RSS of the two measured
    // below is that of downloads only.
    const loader = runService(['serve'], { appDir: ROOT, cwd: dir, env });
    services.push(loader);
    await loader.waitFor((l) => l.msg === 'listening');
    const big = await upload(port, key.token, 'big.bin', GiB);
    const agent = new http.Agent({ keepAlive: true, maxSockets: SMALL_CONCURRENCY });
    const small: string[] = [];
    let made = 0;
    await Promise.all(
      Array.from({ length: SMALL_CONCURRENCY }, async () => {
        while (made < SMALL_COUNT) small.push(await upload(port, key.token, `small-${made++}.bin`, SMALL_SIZE, agent));
      }),
    );
    agent.destroy();
    await services.pop()!.stop();

    const offloading = runService(['serve'], { appDir: ROOT, cwd: dir, env });
    services.push(offloading);
    const plain = runService(['serve'], { appDir: ROOT, cwd: dir, env: { ...env, PORT: String(plainPort), DOWNLOAD_OFFLOAD: 'off' } });
    services.push(plain);
    await Promise.all(services.map((s) => s.waitFor((l) => l.msg === 'listening')));
    // What each has taken by the time it listens, before any download.
    const [offloadingAtStart, plainAtStart] = [peakRssMb(offloading.child.pid!), peakRssMb(plain.child.pid!)];
    nginx = await startNginx({
      dir: path.join(dir, 'nginx'), upstreamPort: port, filesDir, root: ROOT,
      extra: `server { listen 127.0.0.1:${directPort}; location / { root ${filesDir}; sendfile on; tcp_nopush on; } }`,
    });
    const auth = { authorization: `Bearer ${key.token}` };
    const sides: Record<'direct' | 'offload' | 'stowage', Side> = {
      direct: { name: 'nginx, the file directly', url: (id) => `http://127.0.0.1:${directPort}/${id.slice(0, 2)}/${id}`, headers: {} },
      offload: { name: 'nginx + stowage, offloaded', url: (id) => `${nginx!.url}/v1/files/${id}/content`, headers: auth },
      stowage: { name: 'stowage alone', url: (id) => `http://127.0.0.1:${plainPort}/v1/files/${id}/content`, headers: auth },
    };
    const order = Object.keys(sides) as (keyof typeof sides)[];
    // Every side reads from the page cache: one untimed read of each first.
    await curlMbps(sides.direct, big);
    for (const side of order) await smallFilesPerSecond(sides[side], small.slice(0, 200));

    const large: Record<string, number[]> = { direct: [], offload: [], stowage: [] };
    const many: Record<string, number[]> = { direct: [], offload: [], stowage: [] };
    const turn = (i: number) => order.map((_, j) => order[(i + j) % order.length]);
    for (let i = 0; i < repeats; i++) for (const side of turn(i)) large[side].push(await curlMbps(sides[side], big));
    const [worker] = await childrenOf(nginx.pid);
    const rss = () => [peakRssMb(worker), peakRssMb(offloading.child.pid!), peakRssMb(plain.child.pid!)].map((mb) => `${mb.toFixed(0)} MB`);
    const largeRss = rss();
    for (let i = 0; i < repeats; i++) for (const side of turn(i)) many[side].push(await smallFilesPerSecond(sides[side], small));
    const smallRss = rss();
    const m = (runs: number[]) => median(runs);
    table([
      { case: '1 GiB download, offloaded', baseline: `nginx direct: ${m(large.direct).toFixed(0)} MB/s`, stowage: `${m(large.offload).toFixed(0)} MB/s`, ratio: (m(large.offload) / m(large.direct)).toFixed(2), target: '>= 0.80' },
      { case: '1 GiB download, stowage alone', baseline: `nginx direct: ${m(large.direct).toFixed(0)} MB/s`, stowage: `${m(large.stowage).toFixed(0)} MB/s`, ratio: (m(large.stowage) / m(large.direct)).toFixed(2), target: '-' },
      { case: `${SMALL_COUNT} x 16 KiB downloads (c=${SMALL_CONCURRENCY}), offloaded`, baseline: `nginx direct: ${m(many.direct).toFixed(0)} files/s`, stowage: `${m(many.offload).toFixed(0)} files/s`, ratio: (m(many.offload) / m(many.direct)).toFixed(2), target: '-' },
      { case: `${SMALL_COUNT} x 16 KiB downloads, stowage alone`, baseline: `nginx direct: ${m(many.direct).toFixed(0)} files/s`, stowage: `${m(many.stowage).toFixed(0)} files/s`, ratio: (m(many.stowage) / m(many.direct)).toFixed(2), target: '-' },
      { case: 'peak RSS at start', baseline: '-', stowage: `offloading ${offloadingAtStart.toFixed(0)} MB, alone ${plainAtStart.toFixed(0)} MB`, ratio: '-', target: '-' },
      { case: 'peak RSS after the 1 GiB runs', baseline: `nginx worker: ${largeRss[0]}`, stowage: `offloading ${largeRss[1]}, alone ${largeRss[2]}`, ratio: '-', target: '-' },
      { case: 'peak RSS after the 16 KiB runs', baseline: `nginx worker: ${smallRss[0]}`, stowage: `offloading ${smallRss[1]}, alone ${smallRss[2]}`, ratio: '-', target: '-' },
    ]);
    const every = (runs: number[]) => runs.map((r) => r.toFixed(0)).join(', ');
    console.log(`1 GiB, every run in MB/s: nginx direct ${every(large.direct)}; offloaded ${every(large.offload)}; stowage alone ${every(large.stowage)}`);
    console.log(`16 KiB, every run in files/s: nginx direct ${every(many.direct)}; offloaded ${every(many.offload)}; stowage alone ${every(many.stowage)}`);
  } finally {
    await nginx?.stop();
    await Promise.all(services.map((s) => s.stop()));
    await fsp.rm(dir, { recursive: true, force: true });
  }
}
