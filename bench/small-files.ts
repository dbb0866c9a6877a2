import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fsp from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { type PostgresServer, startPostgres } from '../test/helpers/postgres';
import { ROOT, type Child, cpuMs, peakRssMb, request, startChild, table, uploadToStowage } from './harness';
import { monotonicMicros, type StepTime, stepTimes } from './profile-steps';

const run = promisify(execFile);
const SIZE = 16 * 1024;
const COUNT = 2000;
const CONCURRENCY = 16;
const BLOCK = randomBytes(SIZE);
const cliIn = (appDir: string) => path.join(appDir, 'dist/src/cli/index.js');

/** A running server of one side, and how to talk to it. */
interface Server {
  child: Child;
  upload(name: string, agent: http.Agent): Promise<string>;
  downloadPath(id: string): string;
  headers: Record<string, string>;
}

interface Side {
  name: string;
  start(dir: string, options: { postgres?: PostgresServer; nodeArgs?: string[] }): Promise<Server>;
}

function bareSide(name: string, env: Record<string, string>, withDatabase = false): Side {
  return {
    name,
    async start(dir, { postgres }) {
      const database: Record<string, string> = withDatabase && postgres ? { BARE_DATABASE_URL: await postgres.createDatabase() } : {};
      const child = await startChild(path.join(ROOT, 'dist/bench/bare-server.js'), { BARE_DIR: dir, ...env, ...database });
      return {
        child,
        headers: {},
        async upload(_name, agent) {
          const res = await request({ host: '127.0.0.1', port: child.port, method: 'POST', path: '/', agent, headers: { 'content-length': SIZE }, body: BLOCK });
          if (res.status !== 201) throw new Error(`bare upload answered ${res.status}`);
          return (JSON.parse(res.body) as { id: string }).id;
        },
        downloadPath: (id) => `/${id}`,
      };
    },
  };
}

/**
 * stowage as deployed: a volume store, LOG_LEVEL=info, and an API key made with the CLI (so every
 * request is authenticated as a client's would be). On PostgreSQL, a database of its own.
 */
function stowageSide(name: string, withDatabase = false, appDir = ROOT): Side {
  const CLI = cliIn(appDir);
  return {
    name,
    async start(dir, { postgres, nodeArgs }) {
      const env: Record<string, string> = {
        HOME: dir, STORAGE: 'volume', STORAGE_PATH: path.join(dir, 'files'), DATABASE_PATH: path.join(dir, 'stowage.db'), LOG_LEVEL: 'info',
        // The uploads come 16 at a time from one address (127.0.0.1).
        UPLOADS_PER_CLIENT: '64',
        ...(withDatabase && postgres && { DATABASE_URL: await postgres.createDatabase() }),
      };
      const { stdout } = await run(process.execPath, [CLI, 'keys', 'create', '--owner', 'bench', '--scope', 'write', '--json'], { cwd: dir, env: { PATH: process.env.PATH ?? '', ...env } });
      const { token } = JSON.parse(stdout) as { token: string };
      // BENCH_NODE_ARGS: Node flags for this build's process (not BENCH_COMPARE's), a heap setting to try.
      const tried = appDir === ROOT && process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ') : [];
      const child = await startChild(CLI, { ...env, PORT: '0', HOST: '127.0.0.1' }, { cwd: dir, nodeArgs: [...tried, ...(nodeArgs ?? [])] });
      return {
        child,
        headers: { authorization: `Bearer ${token}` },
        upload: (file, agent) => uploadToStowage(child.port, file, SIZE, BLOCK, agent, undefined, token),
        downloadPath: (id) => `/v1/files/${id}/content`,
      };
    },
  };
}

const SIDES = {
  bare: bareSide('bare pipeline(req, createWriteStream)', {}),
  durable: bareSide('bare durable: temp name, fsync, rename, fsync dir', { BARE_DURABLE: '1' }),
  stowage: stowageSide('stowage, SQLite catalog'),
  durablePg: bareSide('bare durable + one INSERT per file (PostgreSQL)', { BARE_DURABLE: '1' }, true),
  stowagePg: stowageSide('stowage, PostgreSQL catalog', true),
  // BENCH_COMPARE=<dir>: another build of stowage (a copy of the repo before a change), run as one more side.
  compare: stowageSide(`stowage built in ${process.env.BENCH_COMPARE}`, false, process.env.BENCH_COMPARE),
  comparePg: stowageSide(`stowage built in ${process.env.BENCH_COMPARE}, PostgreSQL`, true, process.env.BENCH_COMPARE),
};
type SideName = keyof typeof SIDES;

interface Run {
  up: number;
  down: number;
  rss: number;
  /** Peak RSS once the uploads were done (before the downloads). */
  upRss: number;
  /** The server's CPU time per file (user + system), µs. */
  upCpu: number;
  downCpu: number;
  steps?: { up: StepTime[]; down: StepTime[] };
}

/** Removes a run's files and waits for the disk to finish with them, so the next run starts even. */
async function settle(dir: string): Promise<void> {
  await fsp.rm(dir, { recursive: true, force: true });
  execFileSync('sync');
}

/** Runs `task` `COUNT` times, `CONCURRENCY` at a time; resolves with files per second. */
async function rate(task: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let i = next++; i < COUNT; i = next++) await task(i);
    }),
  );
  return COUNT / ((performance.now() - started) / 1000);
}

/**
 * One fresh server process: COUNT uploads, then COUNT downloads, CONCURRENCY at a time over
 * keep-alive connections; its peak RSS is that of the small files alone. `profileDir`: run it
 * under `--cpu-prof` and say where its CPU time went in each phase.
 */
async function runOnce(side: Side, postgres: PostgresServer | undefined, profileDir?: string): Promise<Run> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'stowage-bench-small-'));
  const server = await side.start(dir, { postgres, nodeArgs: profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : undefined });
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  let stopped = false;
  try {
    const ids: string[] = [];
    const pid = server.child.process.pid!;
    const cpu0 = cpuMs(pid);
    const t0 = monotonicMicros();
    const up = await rate(async (i) => void ids.push(await server.upload(`small-${i}.bin`, agent)));
    const t1 = monotonicMicros();
    const cpu1 = cpuMs(pid);
    const upRss = peakRssMb(pid);
    const down = await rate(async (i) => {
      const res = await request({ host: '127.0.0.1', port: server.child.port, path: server.downloadPath(ids[i]), agent, headers: server.headers });
      if (res.bytes !== SIZE) throw new Error(`small download answered ${res.status} with ${res.bytes} bytes`);
    });
    const t2 = monotonicMicros();
    const cpu2 = cpuMs(pid);
    const rss = peakRssMb(pid);
    const measured = { up, down, rss, upRss, upCpu: ((cpu1 - cpu0) / COUNT) * 1000, downCpu: ((cpu2 - cpu1) / COUNT) * 1000 };
    if (!profileDir) return measured;
    agent.destroy();
    await server.child.stop();
    stopped = true;
    const [file] = (await fsp.readdir(profileDir)).filter((f) => f.endsWith('.cpuprofile'));
    const profile = path.join(profileDir, file);
    // BENCH_KEEP_PROFILE=<dir>: keep the profile, to open in Chrome's DevTools or speedscope.
    if (process.env.BENCH_KEEP_PROFILE) await fsp.copyFile(profile, path.join(process.env.BENCH_KEEP_PROFILE, `${side.name.replace(/\W+/g, '-')}.cpuprofile`));
    return { ...measured, steps: { up: stepTimes(profile, t0, t1), down: stepTimes(profile, t1, t2) } };
  } finally {
    agent.destroy();
    if (!stopped) await server.child.stop();
    await settle(dir);
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const loadAverage = () => os.loadavg()[0].toFixed(1);

function printSteps(title: string, steps: StepTime[]): void {
  const total = steps.reduce((sum, s) => sum + s.ms, 0);
  const busy = steps.filter((s) => s.step !== 'idle').reduce((sum, s) => sum + s.ms, 0);
  console.log(`\n${title}: ${busy.toFixed(0)} ms of CPU on the main thread for ${COUNT} files (${((busy / COUNT) * 1000).toFixed(0)} µs each), ${(total - busy).toFixed(0)} ms idle`);
  table(
    steps
      .filter((s) => s.step !== 'idle' && s.ms / busy >= 0.005)
      .map((s) => ({ step: s.step, 'µs per file': ((s.ms / COUNT) * 1000).toFixed(0), share: `${((s.ms / busy) * 100).toFixed(1)}%` })),
  );
}

/**
 * 16 KiB uploads and downloads, 16 at a time, through stowage's volume store against bare Node
 * servers in the same run: the plain one, and one that makes each file durable the way stowage
 * must (temp name, fsync, rename, fsync of the directory); with `postgres`, also stowage on a
 * PostgreSQL catalog against that durable server plus one INSERT per file into the same
 * PostgreSQL. Every side runs `repeats` times in a fresh process, taking turns to go first;
 * figures are medians (peak RSS: the highest). Then one more stowage run of each catalog under
 * `--cpu-prof`, its CPU time grouped by step.
 */
export async function runSmallFilesBench(repeats = 5, options: { postgres?: boolean } = { postgres: true }): Promise<void> {
  const compare = process.env.BENCH_COMPARE !== undefined;
  const names: SideName[] = [
    ...(['bare', 'durable', 'stowage'] as const),
    ...(compare ? (['compare'] as const) : []),
    ...(options.postgres ? (['durablePg', 'stowagePg'] as const) : []),
    ...(options.postgres && compare ? (['comparePg'] as const) : []),
  ];
  console.log(`\n## ${COUNT} x 16 KiB uploads and downloads at concurrency ${CONCURRENCY}, medians of ${repeats} (load average ${loadAverage()})`);
  const postgres = options.postgres ? await startPostgres() : undefined;
  try {
    const runs = Object.fromEntries(names.map((n) => [n, [] as Run[]])) as Record<SideName, Run[]>;
    for (let i = 0; i < repeats; i++) {
      // Which side goes first rotates: a run's speed depends on what ran just before it.
      for (let j = 0; j < names.length; j++) {
        const name = names[(i + j) % names.length];
        runs[name].push(await runOnce(SIDES[name], postgres));
      }
    }
    // BENCH_REPEATS=0: the profiled runs alone.
    if (repeats > 0) {
      const m = (name: SideName) => {
        const r = runs[name];
        return { up: median(r.map((x) => x.up)), down: median(r.map((x) => x.down)), rss: Math.max(...r.map((x) => x.rss)), upCpu: median(r.map((x) => x.upCpu)), downCpu: median(r.map((x) => x.downCpu)) };
      };
      const row = (what: string, base: SideName, side: SideName, key: 'up' | 'down', target: string) => ({
        case: what,
        baseline: `${SIDES[base].name}: ${m(base)[key].toFixed(0)} files/s`,
        stowage: `${m(side)[key].toFixed(0)} files/s`,
        ratio: (m(side)[key] / m(base)[key]).toFixed(2),
        target,
        'server CPU µs per file': `${m(base)[`${key}Cpu`].toFixed(0)} : ${m(side)[`${key}Cpu`].toFixed(0)}`,
      });
      table([
        row('upload', 'durable', 'stowage', 'up', '>= 0.80'),
        row('upload', 'bare', 'stowage', 'up', '-'),
        row('download', 'bare', 'stowage', 'down', '>= 0.80'),
        ...(options.postgres ? [row('upload, PostgreSQL', 'durablePg', 'stowagePg', 'up', '>= 0.80'), row('download, PostgreSQL', 'bare', 'stowagePg', 'down', '>= 0.80')] : []),
        ...(compare ? [row('upload, this build against the other', 'compare', 'stowage', 'up', '-'), row('download, this build against the other', 'compare', 'stowage', 'down', '-')] : []),
        ...(compare && options.postgres ? [row('upload, PostgreSQL, this build against the other', 'comparePg', 'stowagePg', 'up', '-'), row('download, PostgreSQL, this build against the other', 'comparePg', 'stowagePg', 'down', '-')] : []),
        ...names.map((n) => ({ case: `peak RSS, ${SIDES[n].name}`, baseline: '', stowage: `${m(n).rss.toFixed(0)} MB`, ratio: '', target: n.startsWith('stowage') ? '< 120 MB' : '', 'server CPU µs per file': '' })),
      ]);
      for (const n of names) {
        const every = (key: 'up' | 'down' | 'upCpu' | 'downCpu') => runs[n].map((r) => r[key].toFixed(0)).join(', ');
        console.log(
          `every run, ${SIDES[n].name}: uploads/s ${every('up')}; downloads/s ${every('down')}; server CPU µs per upload ${every('upCpu')}, per download ${every('downCpu')}; peak RSS ${runs[n].map((r) => r.rss.toFixed(0)).join(', ')} MB (after the uploads ${runs[n].map((r) => r.upRss.toFixed(0)).join(', ')})`,
        );
      }
      console.log(`load average after: ${loadAverage()}`);
    }
    for (const n of names.filter((x) => x.startsWith('stowage') && process.env.BENCH_PROFILE !== '0')) {
      const profileDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'stowage-bench-prof-'));
      try {
        const profiled = await runOnce(SIDES[n], postgres, profileDir);
        printSteps(`Profile of ${SIDES[n].name}, uploads (${profiled.up.toFixed(0)} files/s under --cpu-prof)`, profiled.steps!.up);
        printSteps(`Profile of ${SIDES[n].name}, downloads (${profiled.down.toFixed(0)} files/s under --cpu-prof)`, profiled.steps!.down);
      } finally {
        await fsp.rm(profileDir, { recursive: true, force: true });
      }
    }
  } finally {
    await postgres?.stop();
  }
}

if (require.main === module) {
  runSmallFilesBench(Number(process.env.BENCH_REPEATS ?? 5), { postgres: process.env.BENCH_POSTGRES !== '0' }).catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
