import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { bigCsv, inlineStringBomb, sharedStringsBomb, toFile } from '../test/helpers/hostile';
import { type Child, procStatusMb, ROOT, startChild } from './harness';

/*
 * Hostile and heavy report sources against a real `serve` process (dist/, in-process task
 * worker, volume store), one fresh server per run:
 *
 * - peak RSS of the server while it processes each source: an xlsx whose 460 KB hold one
 *   452 MiB inline string, an xlsx whose 1.2 MB hold 482 MiB of shared strings, a valid 95 MB CSV
 *   (the cases of issue 14); and how each run ended;
 * - /healthz latency (p50, p99, max) on an idle server, and on the same server while it builds an
 *   xlsx report from a 20 MB CSV.
 *
 * BENCH_APP_DIR runs another build of stowage (a checkout with its own dist/) the same way, to
 * measure before and after a change; BENCH_RUNS sets the runs per case (3). REPORT_* variables
 * and NODE_OPTIONS set for the benchmark are passed to the servers, to measure other settings
 * (NODE_OPTIONS=--max-old-space-size=512 gives a server the heap of a 512 MB dyno).
 */

const MiB = 1024 * 1024;
const APP_DIR = process.env.BENCH_APP_DIR ? path.resolve(process.env.BENCH_APP_DIR) : ROOT;
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

interface Source {
  name: string;
  file: string;
  format: 'csv' | 'xlsx';
}

interface MemoryRun {
  source: string;
  peakRssMb: number;
  seconds: number;
  outcome: string;
}

interface HealthRun {
  label: string;
  requests: number;
  p50: number;
  p99: number;
  max: number;
  reportSeconds?: number;
  outcome?: string;
}

const alive = (child: Child) => child.process.exitCode === null && child.process.signalCode === null;

async function startServer(dir: string): Promise<Child> {
  await fsp.mkdir(dir, { recursive: true });
  const settings = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => (e[0].startsWith('REPORT_') || e[0] === 'NODE_OPTIONS') && e[1] !== undefined));
  // Loopback without keys: dev mode, no credentials needed.
  return startChild(
    path.join(APP_DIR, 'dist/src/cli/index.js'),
    { PORT: '0', HOST: '127.0.0.1', STORAGE: 'volume', STORAGE_PATH: path.join(dir, 'files'), TMPDIR: dir, LOG_LEVEL: 'info', WORKERS: '1', ...settings },
    { cwd: dir },
  );
}

async function upload(port: number, file: string): Promise<string> {
  const form = new FormData();
  form.append('file', await fs.openAsBlob(file), path.basename(file));
  const res = await fetch(`http://127.0.0.1:${port}/v1/files`, { method: 'POST', body: form });
  if (res.status !== 201) throw new Error(`upload answered ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { files: { id: string }[] }).files[0].id;
}

interface TaskView {
  status: string;
  error?: { code: string; message: string } | null;
}

/** Queues a report from `fileId` and polls until it finishes (or the server dies). */
async function report(child: Child, fileId: string, format: string): Promise<{ task: TaskView | undefined; seconds: number }> {
  const base = `http://127.0.0.1:${child.port}`;
  const started = performance.now();
  const res = await fetch(`${base}/v1/reports`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ format, title: 'bench', source: { fileId } }),
  });
  if (res.status !== 202 && res.status !== 201) throw new Error(`report answered ${res.status}: ${await res.text()}`);
  const { id } = (await res.json()) as { id: string };
  const exited = new Promise<void>((resolve) => child.process.once('exit', () => resolve()));
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const task = await fetch(`${base}/v1/tasks/${id}`).then(
      async (r) => (await r.json()) as TaskView,
      // The server died (a heap out of memory aborts it): note it once it has exited.
      () => Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]).then(() => undefined),
    );
    if (!task) return { task: undefined, seconds: (performance.now() - started) / 1000 };
    if (['succeeded', 'failed', 'cancelled'].includes(task.status)) return { task, seconds: (performance.now() - started) / 1000 };
  }
}

function outcome(task: TaskView | undefined, child: Child): string {
  if (!task) return `server died (${child.process.signalCode ?? `exit ${child.process.exitCode}`})`;
  if (task.status !== 'failed') return task.status;
  const cap = /\b(REPORT_[A-Z_]+)\b/.exec(task.error?.message ?? '')?.[1];
  return `failed: ${task.error?.code}${cap ? ` (${cap})` : ''}`;
}

export async function memoryRun(source: Source, dir: string): Promise<MemoryRun> {
  const child = await startServer(dir);
  try {
    const fileId = await upload(child.port, source.file);
    // Peak RSS from here: the report alone, not start-up and the upload (Linux: clear_refs 5
    // resets VmHWM to the current RSS).
    await fsp.writeFile(`/proc/${child.process.pid}/clear_refs`, '5').catch(() => undefined);
    let peak = procStatusMb(child.process.pid!, 'VmRSS');
    const sampler = setInterval(() => {
      try {
        const now = procStatusMb(child.process.pid!, 'VmHWM');
        if (Number.isFinite(now)) peak = Math.max(peak, now);
      } catch {
        // exited
      }
    }, 50);
    const { task, seconds } = await report(child, fileId, source.format);
    clearInterval(sampler);
    if (alive(child)) peak = Math.max(peak, procStatusMb(child.process.pid!, 'VmHWM'));
    return { source: source.name, peakRssMb: peak, seconds, outcome: outcome(task, child) };
  } finally {
    if (alive(child)) await child.stop();
  }
}

/** Sends GET /healthz one after another, 10 ms apart, until `until` settles or `count` are sent. */
async function probe(port: number, until: Promise<unknown> | undefined, count = 300): Promise<number[]> {
  let done = false;
  void until?.finally(() => (done = true));
  const times: number[] = [];
  while (!done && (until || times.length < count)) {
    const started = performance.now();
    const res = await fetch(`http://127.0.0.1:${port}/healthz`);
    await res.arrayBuffer();
    times.push(performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return times;
}

function summary(label: string, times: number[]): HealthRun {
  const sorted = [...times].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
  return { label, requests: times.length, p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] };
}

export async function healthRuns(csv: string, dir: string): Promise<HealthRun[]> {
  const child = await startServer(dir);
  try {
    const fileId = await upload(child.port, csv);
    await probe(child.port, undefined, 50); // warm up
    const idle = summary('idle', await probe(child.port, undefined));
    const busy = report(child, fileId, 'xlsx');
    const during = summary('during a report', await probe(child.port, busy));
    const { task, seconds } = await busy;
    return [idle, { ...during, reportSeconds: seconds, outcome: outcome(task, child) }];
  } finally {
    if (alive(child)) await child.stop();
  }
}

export async function runHostileBench(): Promise<void> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'stowage-hostile-bench-'));
  try {
    console.log(`Report sources against ${APP_DIR === ROOT ? 'this build' : APP_DIR} on ${os.cpus().length} cores, Node ${process.version}; ${RUNS} runs, a fresh server each.`);
    const sources: Source[] = [
      { name: 'xlsx, one 452 MiB inline string', file: path.join(dir, 'inline-bomb.xlsx'), format: 'csv' },
      { name: 'xlsx, 482 MiB of shared strings', file: path.join(dir, 'shared-strings-bomb.xlsx'), format: 'csv' },
      { name: 'CSV, 95 MB, valid', file: path.join(dir, 'big.csv'), format: 'csv' },
    ];
    const sizes = [
      await toFile(inlineStringBomb(452 * MiB), sources[0].file),
      await toFile(sharedStringsBomb(482 * MiB), sources[1].file),
      await toFile(bigCsv(95 * 1000 * 1000), sources[2].file),
    ];
    const csv20 = path.join(dir, 'csv20.csv');
    await toFile(bigCsv(20 * 1000 * 1000), csv20);
    console.log(`\nPeak RSS of the server while it builds a CSV report from each source (sources: ${sources.map((s, i) => `${s.name} = ${(sizes[i] / 1e6).toFixed(2)} MB`).join('; ')})`);
    for (const source of sources) {
      for (let run = 1; run <= RUNS; run++) {
        const m = await memoryRun(source, path.join(dir, `server-${source.format}-${run}-${Math.random().toString(36).slice(2)}`));
        console.log(`  ${m.source.padEnd(36)} run ${run}: peak RSS ${m.peakRssMb.toFixed(0).padStart(5)} MB, ${m.seconds.toFixed(1).padStart(5)} s, ${m.outcome}`);
      }
    }
    console.log('\n/healthz latency, idle and while the same server builds an xlsx report from a 20 MB CSV (ms)');
    for (let run = 1; run <= RUNS; run++) {
      for (const h of await healthRuns(csv20, path.join(dir, `health-${run}`))) {
        const report = h.reportSeconds === undefined ? '' : `; report ${h.reportSeconds.toFixed(1)} s, ${h.outcome}`;
        console.log(`  run ${run} ${h.label.padEnd(16)} ${String(h.requests).padStart(4)} requests: p50 ${h.p50.toFixed(1).padStart(6)}, p99 ${h.p99.toFixed(1).padStart(6)}, max ${h.max.toFixed(1).padStart(6)}${report}`);
      }
    }
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  runHostileBench().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
