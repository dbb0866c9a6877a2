import { type ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { promisify } from 'node:util';
import type { Scope } from '../../src/auth/principal';

export const ROOT = path.resolve(__dirname, '../..');
const execFileAsync = promisify(execFile);
const CLI = 'dist/src/cli/index.js';

export interface LogLine {
  msg: string;
  [key: string]: unknown;
}

/** A free TCP port on 127.0.0.1, to hand to a child through PORT. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Hard-links a tree into place (new directories, shared file contents: instant even for
 * node_modules, and readable through the new path whatever the permissions above the original);
 * copies where hard links are not possible (another filesystem, a cp without -l).
 */
async function linkOrCopy(from: string, to: string): Promise<void> {
  try {
    await execFileAsync('cp', ['-al', from, to]);
  } catch {
    await fsp.rm(to, { recursive: true, force: true });
    await fsp.cp(from, to, { recursive: true, verbatimSymlinks: true });
  }
}

/**
 * A directory holding the built app as a container image would: owned by root and not writable
 * by the user the service runs as. As root the service runs as `nobody` (root ignores
 * permissions); otherwise as the current user, with the directory made read-only.
 */
export async function installReadOnlyApp(base: string): Promise<{ appDir: string; asUser: { uid?: number; gid?: number } }> {
  if (!fs.existsSync(path.join(ROOT, CLI))) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does).`);
  const appDir = path.join(base, 'app');
  await fsp.mkdir(appDir);
  for (const entry of ['dist', 'public', 'node_modules', 'package.json']) {
    await linkOrCopy(path.join(ROOT, entry), path.join(appDir, entry));
  }
  if (process.getuid?.() === 0) {
    await fsp.chmod(base, 0o755);
    return { appDir, asUser: { uid: 65534, gid: 65534 } };
  }
  await fsp.chmod(appDir, 0o555);
  return { appDir, asUser: {} };
}

/** A directory the service user can write to. */
export async function writableDir(dir: string, asUser: { uid?: number; gid?: number }): Promise<string> {
  await fsp.mkdir(dir, { recursive: true });
  if (asUser.uid !== undefined) await fsp.chown(dir, asUser.uid, asUser.gid!);
  return dir;
}

/** A running `stowage` child process whose JSON log lines can be awaited. */
export class ServiceProcess {
  readonly lines: LogLine[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<number | null>;
  private waiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];

  constructor(readonly child: ChildProcess) {
    readline.createInterface({ input: child.stdout! }).on('line', (text) => {
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        line = { msg: text };
      }
      this.lines.push(line);
      this.waiters = this.waiters.filter((w) => !(w.match(line) && (w.resolve(line), true)));
    });
    readline.createInterface({ input: child.stderr! }).on('line', (text) => this.stderr.push(text));
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  waitFor(match: (l: LogLine) => boolean): Promise<LogLine> {
    const seen = this.lines.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      this.waiters.push({ match, resolve });
      this.exited.then((code) => reject(new Error(`service exited (${code}) before the log line; stderr:\n${this.stderr.join('\n')}`)));
    });
  }

  async stop(): Promise<number | null> {
    if (this.child.exitCode === null) this.child.kill('SIGTERM');
    return this.exited;
  }
}

export function runService(
  args: string[],
  options: { cwd?: string; env: Record<string, string>; asUser?: { uid?: number; gid?: number }; appDir?: string },
): ServiceProcess {
  const appDir = options.appDir ?? ROOT;
  const child = spawn(process.execPath, [path.join(appDir, CLI), ...args], {
    cwd: options.cwd ?? appDir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...options.env },
    uid: options.asUser?.uid,
    gid: options.asUser?.gid,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new ServiceProcess(child);
}

/** What `stowage keys create --json` prints. */
export interface CliKey {
  id: string;
  token: string;
  owner: string;
  scope: Scope;
  expiresAt: string | null;
}

/**
 * Creates an API key as an operator does before starting a service: the built CLI's
 * `stowage keys create --json`, run with the environment (and directory, and user) the service
 * gets, so the key lands in the catalog the service reads. Services sharing one catalog
 * (DATABASE_URL) all accept it. An existing key also means a loopback server is not in dev mode:
 * requests need `Authorization: Bearer <token>` (see `bearer`).
 */
export async function createKeyWithCli(
  env: Record<string, string>,
  owner: string,
  scope: Scope = 'write',
  options: { cwd?: string; asUser?: { uid?: number; gid?: number }; appDir?: string } = {},
): Promise<CliKey> {
  const appDir = options.appDir ?? ROOT;
  const args = [path.join(appDir, CLI), 'keys', 'create', '--owner', owner, '--scope', scope, '--label', 'test', '--json'];
  let stdout: string;
  try {
    ({ stdout } = await execFileAsync(process.execPath, args, {
      cwd: options.cwd ?? appDir,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
      uid: options.asUser?.uid,
      gid: options.asUser?.gid,
    }));
  } catch (err) {
    const { stderr } = err as { stderr?: string };
    throw new Error(`stowage keys create --owner ${owner} --scope ${scope} failed:\n${stderr ?? String(err)}`);
  }
  const key = JSON.parse(stdout.trim()) as CliKey;
  if (!key.token?.startsWith('stw_') || key.owner !== owner || key.scope !== scope) throw new Error(`unexpected output of stowage keys create: ${stdout}`);
  return key;
}

/** The header that carries a key or token: `{ Authorization: 'Bearer <token>' }`, to spread into fetch's headers. */
export function bearer(key: string | { token: string }): { Authorization: string } {
  return { Authorization: `Bearer ${typeof key === 'string' ? key : key.token}` };
}
