import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT, runService, ServiceProcess } from '../helpers/service';
import { listFilesDeep, makeTempDir } from '../helpers/tmp';

const execFileAsync = promisify(execFile);

/**
 * `npm start` and `scripts/prepare.js` in a copy of the project (sources, scripts, configs, and
 * the compiled server with its build stamp, timestamps kept; node_modules linked), so builds and
 * edits here never touch the working tree. Behaviour only: what runs, what is written, what is
 * printed. How long it takes is measured elsewhere, not asserted.
 */
let base: string;
let app: string;
let env: Record<string, string>;
const running: ServiceProcess[] = [];

async function copyKeepingTimes(rel: string): Promise<void> {
  if (!fs.existsSync(path.join(ROOT, rel))) return;
  await fsp.cp(path.join(ROOT, rel), path.join(app, rel), { recursive: true, preserveTimestamps: true });
}

/** Every file under dist/ with its modification time: what a build would change. */
async function distState(): Promise<Record<string, number>> {
  const files = await listFilesDeep(path.join(app, 'dist'));
  return Object.fromEntries(await Promise.all(files.map(async (f) => [f, (await fsp.stat(path.join(app, 'dist', f))).mtimeMs] as const)));
}

async function prepare(): Promise<{ stdout: string; stderr: string }> {
  return execFileAsync(process.execPath, ['scripts/prepare.js'], { cwd: app, env });
}

beforeAll(async () => {
  base = await makeTempDir('stowage-start-');
  app = path.join(base, 'app');
  await fsp.mkdir(path.join(base, 'home'));
  for (const rel of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'tsconfig.bench.json', 'scripts', 'src', 'public']) {
    await copyKeepingTimes(rel);
  }
  // The server as `npm test` built it; no compiled tests or benchmarks.
  for (const rel of ['dist/src', 'dist/.build/src.json', 'dist/.build/src.tsbuildinfo']) await copyKeepingTimes(rel);
  // Each package linked, npm's record of the install copied: were prepare.js ever to reinstall
  // here, it would replace these links, not the project's node_modules.
  await fsp.mkdir(path.join(app, 'node_modules'));
  for (const entry of await fsp.readdir(path.join(ROOT, 'node_modules'))) {
    if (entry !== '.package-lock.json') await fsp.symlink(path.join(ROOT, 'node_modules', entry), path.join(app, 'node_modules', entry));
  }
  await copyKeepingTimes('node_modules/.package-lock.json');
  env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: path.join(base, 'home'), npm_config_update_notifier: 'false' };
  // Whatever the working tree's dist/ holds, this makes the copy a built tree.
  await prepare();
}, 180_000);
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop()));
});
afterAll(async () => {
  await fsp.rm(base, { recursive: true, force: true });
});

describe('npm start on a built tree', () => {
  it('prepare.js compiles nothing, writes nothing and prints nothing when no source changed', async () => {
    const before = await distState();
    expect(await prepare()).toEqual({ stdout: '', stderr: '' });
    expect(await distState()).toEqual(before);
    expect(fs.existsSync(path.join(app, 'dist/test'))).toBe(false);
    expect(fs.existsSync(path.join(app, 'dist/bench'))).toBe(false);
  });

  it('reaches "listening" without compiling, and tells the person the URL, the store and the catalog', async () => {
    const before = await distState();
    const child = spawn('npm', ['start'], {
      cwd: app,
      env: { ...env, PORT: '0', HOST: '0.0.0.0', SECRET_KEY: 'a-secret-key-of-at-least-32-characters!' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    // npm does not pass SIGTERM on to the server: stop the whole process group, as Ctrl-C does.
    const svc = new ServiceProcess(child);
    svc.stop = async () => {
      if (child.exitCode === null) process.kill(-child.pid!, 'SIGTERM');
      return svc.exited;
    };
    running.push(svc);
    const { port } = await svc.waitFor((l) => l.msg === 'listening');
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    // stderr: the human line alone (no "building"); stdout still carries the JSON log line.
    expect(svc.stderr).toEqual([`stowage listening on http://localhost:${port} (storage: volume ./data/files, catalog: ./data/stowage.db)`]);
    expect(await distState()).toEqual(before);
    expect(fs.existsSync(path.join(app, 'dist/test'))).toBe(false);
  });

  it('without a terminal or npm (a supervisor), stderr stays empty and stdout is the JSON log', async () => {
    const svc = runService(['serve'], { appDir: app, cwd: app, env: { ...env, PORT: '0', HOST: '127.0.0.1', STORAGE: 'tmp', TMPDIR: base } });
    running.push(svc);
    await svc.waitFor((l) => l.msg === 'listening');
    expect(svc.stderr).toEqual([]);
    expect(svc.lines.every((l) => typeof l.level === 'number')).toBe(true);
  });

  it('compiles a changed source, removes the output of a deleted one, and says so only when it compiles', async () => {
    const probe = path.join(app, 'src/cli/start-probe.ts');
    const output = path.join(app, 'dist/src/cli/start-probe.js');
    await fsp.writeFile(probe, 'export const probe = 1;\n');
    expect(await prepare()).toEqual({ stdout: '', stderr: 'stowage: building the server...\n' });
    expect(await fsp.readFile(output, 'utf8')).toContain('probe = 1');

    await fsp.writeFile(probe, 'export const probe = 2;\n');
    expect((await prepare()).stderr).toBe('stowage: building the server...\n');
    expect(await fsp.readFile(output, 'utf8')).toContain('probe = 2');

    await fsp.rm(probe);
    expect((await prepare()).stderr).toBe('stowage: building the server...\n');
    expect(fs.existsSync(output)).toBe(false);

    expect(await prepare()).toEqual({ stdout: '', stderr: '' });
    expect(fs.existsSync(path.join(app, 'dist/test'))).toBe(false);
    expect(fs.existsSync(path.join(app, 'dist/bench'))).toBe(false);
  }, 180_000);
});
