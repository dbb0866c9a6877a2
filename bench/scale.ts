import { randomBytes } from 'node:crypto';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type PostgresServer, startPostgres } from '../test/helpers/postgres';
import { freePort, runService, type ServiceProcess } from '../test/helpers/service';
import { ROOT } from './harness';

/**
 * Several instances on one PostgreSQL catalog: upload throughput (64 KiB files, 32 at a time)
 * through 1 and 2 `serve` processes, and report-task throughput with 1 and 2 `stowage worker`
 * processes. Files go to a volume store in one temp directory that every instance shares (as a
 * network disk would be), so the figures measure stowage and the catalog, not s3rver.
 * Client and servers share this machine's cores: the ratio is bounded by them.
 */

const FILE_SIZE = 64 * 1024;
const CONCURRENCY = 32;
const UPLOADS = 1000;
const TASKS = 200;

export interface ScaleBenchResult {
  cores: number;
  uploadsPerSecond: { one: number; two: number };
  tasksPerSecond: { one: number; two: number };
}

interface Deployment {
  env: Record<string, string>;
  processes: ServiceProcess[];
}

async function deployment(postgres: PostgresServer, dir: string): Promise<Deployment> {
  const url = await postgres.createDatabase();
  const files = path.join(dir, path.basename(url), 'files');
  // UPLOADS_PER_CLIENT: the uploads come 32 at a time from one address (127.0.0.1).
  return { env: { HOME: dir, STORAGE: 'volume', STORAGE_PATH: files, DATABASE_URL: url, DATABASE_POOL_SIZE: '20', UPLOADS_PER_CLIENT: '64' }, processes: [] };
}

async function web(d: Deployment, dir: string, logLevel = 'warn'): Promise<string> {
  const port = await freePort();
  const svc = runService(['serve'], { appDir: ROOT, cwd: dir, env: { ...d.env, WORKERS: '0', PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: logLevel } });
  d.processes.push(svc);
  // `listening` is info; at warn level, wait for readiness instead.
  for (;;) {
    if (svc.child.exitCode !== null) throw new Error(`serve exited: ${svc.stderr.join('\n')}`);
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false);
    if (ok) return `http://127.0.0.1:${port}`;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function stopAll(d: Deployment): Promise<void> {
  await Promise.all(d.processes.map((p) => p.stop()));
}

async function uploadsPerSecond(postgres: PostgresServer, dir: string, instances: number): Promise<number> {
  const d = await deployment(postgres, dir);
  try {
    const bases = await Promise.all(Array.from({ length: instances }, () => web(d, dir)));
    const data = randomBytes(FILE_SIZE);
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (let i = next++; i < UPLOADS; i = next++) {
          const form = new FormData();
          form.append('file', new Blob([data]), `f${i}.bin`);
          const res = await fetch(`${bases[i % bases.length]}/v1/files`, { method: 'POST', body: form });
          if (res.status !== 201) throw new Error(`upload answered ${res.status}`);
          await res.arrayBuffer();
        }
      }),
    );
    return UPLOADS / ((performance.now() - started) / 1000);
  } finally {
    await stopAll(d);
  }
}

async function tasksPerSecond(postgres: PostgresServer, dir: string, workers: number): Promise<number> {
  const d = await deployment(postgres, dir);
  try {
    const base = await web(d, dir);
    const procs = Array.from({ length: workers }, () => {
      const svc = runService(['worker'], { appDir: ROOT, cwd: dir, env: { ...d.env, LOG_LEVEL: 'info', WORKER_CONCURRENCY: '2' } });
      d.processes.push(svc);
      return svc;
    });
    await Promise.all(procs.map((p) => p.waitFor((l) => l.msg === 'worker started')));
    const allDone = new Promise<void>((resolve) => {
      let done = 0;
      for (const p of procs) {
        p.child.stdout!.on('data', (chunk: Buffer) => {
          done += chunk.toString().split('"msg":"task finished"').length - 1;
          if (done >= TASKS) resolve();
        });
      }
    });
    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let i = next++; i < TASKS; i = next++) {
          const res = await fetch(`${base}/v1/reports`, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify({
              format: 'csv',
              title: `r${i}`,
              columns: [{ key: 'n', header: 'N', type: 'integer' }, { key: 's', header: 'S', type: 'string' }],
              rows: Array.from({ length: 20 }, (_, n) => ({ n, s: `row ${n}` })),
            }),
          });
          if (res.status !== 202) throw new Error(`report answered ${res.status}`);
          await res.arrayBuffer();
        }
      }),
    );
    await allDone;
    return TASKS / ((performance.now() - started) / 1000);
  } finally {
    await stopAll(d);
  }
}

export async function runScaleBench(): Promise<ScaleBenchResult> {
  const postgres = await startPostgres();
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'stowage-scale-bench-'));
  try {
    // A warm-up round, so the first measured case doesn't pay for cold caches.
    await uploadsPerSecond(postgres, dir, 1);
    return {
      cores: os.cpus().length,
      uploadsPerSecond: { one: await uploadsPerSecond(postgres, dir, 1), two: await uploadsPerSecond(postgres, dir, 2) },
      tasksPerSecond: { one: await tasksPerSecond(postgres, dir, 1), two: await tasksPerSecond(postgres, dir, 2) },
    };
  } finally {
    await postgres.stop();
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

export function formatScaleBench(r: ScaleBenchResult): string {
  const ratio = (a: number, b: number) => (b / a).toFixed(2);
  return [
    `scale (PostgreSQL catalog, shared volume dir, ${r.cores} cores shared by client, servers and PostgreSQL)`,
    `  uploads/s, ${FILE_SIZE / 1024} KiB x ${UPLOADS} at concurrency ${CONCURRENCY}: 1 web ${r.uploadsPerSecond.one.toFixed(0)}, 2 web ${r.uploadsPerSecond.two.toFixed(0)} (x${ratio(r.uploadsPerSecond.one, r.uploadsPerSecond.two)})`,
    `  report tasks/s, ${TASKS} small CSV reports, 2 slots per worker: 1 worker ${r.tasksPerSecond.one.toFixed(1)}, 2 workers ${r.tasksPerSecond.two.toFixed(1)} (x${ratio(r.tasksPerSecond.one, r.tasksPerSecond.two)})`,
  ].join('\n');
}

if (require.main === module) {
  runScaleBench().then(
    (result) => console.log(formatScaleBench(result)),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
