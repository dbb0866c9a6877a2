import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Upload } from 'tus-js-client';
import { ROOT, type Child, mbps, peakRssMb, repeatedBody, request, startChild, table, uploadToStowage } from './harness';

const GiB = 1024 ** 3;
const CHUNK = 8 * 1024 * 1024;
const BLOCK = randomBytes(1024 * 1024);

type Side = 'plain' | 'tus';
type Run = { mbps: number; rss: number };

/** A fresh `serve` on a volume store (loopback dev mode: no credentials), one per run so its peak RSS is the run's. */
function startStowage(dir: string): Promise<Child> {
  return startChild(path.join(ROOT, 'dist/src/cli/index.js'), {
    PORT: '0', HOST: '127.0.0.1', STORAGE: 'volume', STORAGE_PATH: path.join(dir, 'files'), MAX_UPLOAD_BYTES: '2gb', LOG_LEVEL: 'info',
  });
}

/**
 * tus-js-client in Node given a file, as a Node user does: from an fs.ReadStream it reads each
 * 8 MiB PATCH's slice by path as it sends it (a plain stream would be buffered a chunk at a time).
 * Resolves with the file id.
 */
function uploadWithTus(port: number, file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const upload = new Upload(fs.createReadStream(file), {
      endpoint: `http://127.0.0.1:${port}/v1/tus`,
      chunkSize: CHUNK,
      metadata: { filename: 'big.bin', filetype: 'application/octet-stream' },
      retryDelays: [],
      onSuccess: () => resolve(upload.url!.split('/').pop()!),
      onError: reject,
    });
    upload.start();
  });
}

async function run(side: Side, file: string): Promise<Run> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'stowage-bench-tus-'));
  const child = await startStowage(dir);
  try {
    const t = performance.now();
    const id = side === 'tus' ? await uploadWithTus(child.port, file) : await uploadToStowage(child.port, 'big.bin', GiB, BLOCK, undefined, file);
    const ms = performance.now() - t;
    const record = await request({ host: '127.0.0.1', port: child.port, path: `/v1/files/${id}` });
    const { size, status } = JSON.parse(record.body) as { size: number; status: string };
    if (Number(size) !== GiB || status !== 'ready') throw new Error(`${side}: the file is ${status}, ${size} bytes`);
    return { mbps: mbps(GiB, ms), rss: peakRssMb(child.process.pid!) };
  } finally {
    await child.stop();
    await fsp.rm(dir, { recursive: true, force: true });
    execFileSync('sync');
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/**
 * 1 GiB through tus (tus-js-client, 8 MiB chunks) against the same file as one multipart upload,
 * both into a volume store, in the same run. Each side runs `repeats` times, taking turns to go
 * first; speeds are medians, peak RSS the highest of the server's.
 */
export async function runTusBench(repeats = 3): Promise<void> {
  console.log(`\n## 1 GiB resumable (tus) upload against a plain upload (volume store), medians of ${repeats}`);
  const runs: Record<Side, Run[]> = { plain: [], tus: [] };
  // Both sides read the same file (from the page cache after the first run).
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'stowage-bench-tus-file-'));
  const file = path.join(dir, 'big.bin');
  try {
    await pipeline(repeatedBody(BLOCK, GiB / BLOCK.length), fs.createWriteStream(file));
    for (let i = 0; i < repeats; i++) {
      for (const side of (i % 2 ? ['tus', 'plain'] : ['plain', 'tus']) as Side[]) runs[side].push(await run(side, file));
    }
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
  const speed = (side: Side) => median(runs[side].map((r) => r.mbps));
  const rss = (side: Side) => Math.max(...runs[side].map((r) => r.rss));
  table([
    { case: '1 GiB upload', plain: `${speed('plain').toFixed(0)} MB/s`, tus: `${speed('tus').toFixed(0)} MB/s`, ratio: (speed('tus') / speed('plain')).toFixed(2), target: '>= 0.80' },
    { case: 'peak RSS', plain: `${rss('plain').toFixed(0)} MB`, tus: `${rss('tus').toFixed(0)} MB`, ratio: (rss('tus') / rss('plain')).toFixed(2), target: '< 150 MB' },
  ]);
  const every = (side: Side) => runs[side].map((r) => `${r.mbps.toFixed(0)} (${r.rss.toFixed(0)} MB)`).join(', ');
  console.log(`every run in MB/s (peak RSS): plain ${every('plain')}; tus ${every('tus')}`);
}
