import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runSmallFilesBench } from './small-files';
import { ROOT, type Child, mbps, peakRssMb, repeatedBody, request, startChild, table, uploadToStowage } from './harness';

const GiB = 1024 ** 3;
const BLOCK = randomBytes(1024 * 1024);

interface Target {
  name: string;
  start(dir: string): Promise<Child>;
  upload(port: number, name: string, size: number, block: Buffer): Promise<string>;
  downloadPath(id: string): string;
}

const bare: Target = {
  name: 'bare pipeline(req, createWriteStream)',
  start: (dir) => startChild(path.join(ROOT, 'dist/bench/bare-server.js'), { BARE_DIR: dir }),
  async upload(port, _name, size, block) {
    const res = await request({
      host: '127.0.0.1', port, method: 'POST', path: '/',
      headers: { 'content-length': size },
      body: repeatedBody(block, size / block.length),
    });
    return (JSON.parse(res.body) as { id: string }).id;
  },
  downloadPath: (id) => `/${id}`,
};

/** The bare server with an fsync before it answers: what durability alone costs on this disk. */
const durable: Target = {
  ...bare,
  name: 'bare + fsync',
  start: (dir) => startChild(path.join(ROOT, 'dist/bench/bare-server.js'), { BARE_DIR: dir, BARE_FSYNC: '1' }),
};

const stowage: Target = {
  name: 'stowage (volume store)',
  start: (dir) =>
    startChild(path.join(ROOT, 'dist/src/cli/index.js'), {
      PORT: '0', HOST: '127.0.0.1', STORAGE: 'volume', STORAGE_PATH: path.join(dir, 'files'),
      MAX_UPLOAD_BYTES: '2gb', LOG_LEVEL: 'info',
    }),
  upload: uploadToStowage,
  downloadPath: (id) => `/v1/files/${id}/content`,
};

async function runLarge(target: Target) {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'stowage-bench-'));
  const child = await target.start(dir);
  try {
    let t = performance.now();
    const id = await target.upload(child.port, 'big.bin', GiB, BLOCK);
    const upMs = performance.now() - t;
    t = performance.now();
    const down = await request({ host: '127.0.0.1', port: child.port, path: target.downloadPath(id) });
    const downMs = performance.now() - t;
    if (down.bytes !== GiB) throw new Error(`downloaded ${down.bytes} bytes`);
    return { up: mbps(GiB, upMs), down: mbps(GiB, downMs), rss: peakRssMb(child.process.pid!) };
  } finally {
    await child.stop();
    await settle(dir);
  }
}

/** Removes a run's files and waits for the disk to finish with them, so the next run starts even. */
async function settle(dir: string): Promise<void> {
  await fsp.rm(dir, { recursive: true, force: true });
  execFileSync('sync');
}

type Run = { up: number; down: number; rss: number };

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const medians = (runs: Run[]): Run => ({
  up: median(runs.map((r) => r.up)),
  down: median(runs.map((r) => r.down)),
  rss: Math.max(...runs.map((r) => r.rss)),
});

/**
 * 1 GiB through stowage's volume store against a bare Node server, in the same run, then the
 * small files (small-files.ts). Each server runs as its own child process so its peak RSS is its
 * own. Each side runs `repeats` times, taking turns to go first; the figures are medians (peak
 * RSS: the highest), because single runs on a shared 2-core VM vary by 20% or more.
 */
export async function runUploadBench(repeats = 7): Promise<void> {
  console.log(`\n## 1 GiB uploads and downloads (volume store), medians of ${repeats} (load average ${os.loadavg()[0].toFixed(1)})`);
  const sides = { bare, durable, stowage };
  const large: Record<keyof typeof sides, Run[]> = { bare: [], durable: [], stowage: [] };
  for (let i = 0; i < repeats; i++) {
    // Which side goes first rotates: a run's speed depends on what ran just before it (the
    // disk's leftover work, the page cache), so a fixed order would favour one side.
    const order = (['bare', 'durable', 'stowage'] as const).map((_, j, all) => all[(i + j) % all.length]);
    for (const side of order) large[side].push(await runLarge(sides[side]));
  }
  const [lb, ld, ls] = [medians(large.bare), medians(large.durable), medians(large.stowage)];
  table([
    { case: '1 GiB upload', bare: `${lb.up.toFixed(0)} MB/s`, stowage: `${ls.up.toFixed(0)} MB/s`, ratio: (ls.up / lb.up).toFixed(2), target: '>= 0.80' },
    { case: '1 GiB upload vs bare + fsync', bare: `${ld.up.toFixed(0)} MB/s`, stowage: `${ls.up.toFixed(0)} MB/s`, ratio: (ls.up / ld.up).toFixed(2), target: '-' },
    { case: '1 GiB download', bare: `${lb.down.toFixed(0)} MB/s`, stowage: `${ls.down.toFixed(0)} MB/s`, ratio: (ls.down / lb.down).toFixed(2), target: '>= 0.80' },
    { case: 'peak RSS, 1 GiB', bare: `${lb.rss.toFixed(0)} MB`, stowage: `${ls.rss.toFixed(0)} MB`, ratio: (ls.rss / lb.rss).toFixed(2), target: '< 150 MB' },
  ]);
  const every = (runs: Run[]) => runs.map((r) => r.up.toFixed(0)).join(', ');
  console.log(`1 GiB upload, every run in MB/s: bare ${every(large.bare)}; bare + fsync ${every(large.durable)}; stowage ${every(large.stowage)}`);
  await runSmallFilesBench();
}

if (require.main === module) {
  runUploadBench().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
