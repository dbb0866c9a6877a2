import { once } from 'node:events';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { freePort, runService, type ServiceProcess } from '../helpers/service';
import { makeTempDir } from '../helpers/tmp';

/** `stowage keys` as the built CLI, and its keys against a real `stowage serve` on loopback. */

let dir: string;
let server: ServiceProcess | undefined;
beforeEach(async () => {
  dir = await makeTempDir();
});
afterEach(async () => {
  await server?.stop();
  server = undefined;
  await fsp.rm(dir, { recursive: true, force: true });
});

const env = () => ({ STORAGE: 'volume', STORAGE_PATH: path.join(dir, 'files'), DATABASE_PATH: path.join(dir, 'stowage.db'), TMPDIR: dir, LOG_LEVEL: 'info' });

async function cli(...args: string[]) {
  const run = runService(args, { cwd: dir, env: env() });
  const closed = once(run.child, 'close');
  const code = await run.exited;
  await closed;
  return { code, stdout: run.lines.map((l) => (Object.keys(l).length === 1 && typeof l.msg === 'string' ? l.msg : JSON.stringify(l))).join('\n'), lines: run.lines, stderr: run.stderr.join('\n') };
}

it('creates a key whose token is shown once, lists keys without tokens but with last use, and revokes them', async () => {
  const created = await cli('keys', 'create', '--owner', 'alice', '--scope', 'read', '--expires', '90d', '--label', 'nightly export', '--json');
  expect(created.code).toBe(0);
  const key = created.lines[0] as unknown as { id: string; token: string; owner: string; scope: string; expiresAt: string };
  expect(key).toMatchObject({ owner: 'alice', scope: 'read' });
  expect(key.token).toMatch(/^stw_[A-Za-z0-9_-]{43}$/);
  const days = (new Date(key.expiresAt).getTime() - Date.now()) / 86_400_000;
  expect(days).toBeGreaterThan(89.9);
  expect(days).toBeLessThan(90.1);

  const plain = await cli('keys', 'create', '--owner', 'bob');
  expect(plain.stdout).toMatch(/^stw_\S+$/);
  expect(plain.stderr).toContain('shown only now');

  // A key exists, so the loopback server is not in dev mode: every /v1 request needs one.
  const port = await freePort();
  server = runService(['serve'], { cwd: dir, env: { ...env(), PORT: String(port) } });
  await server.waitFor((l) => l.msg === 'listening');
  expect(server.lines.some((l) => typeof l.msg === 'string' && l.msg.startsWith('dev mode'))).toBe(false);
  const base = `http://127.0.0.1:${port}`;
  expect((await fetch(`${base}/v1/files`)).status).toBe(401);
  const listed = await fetch(`${base}/v1/files`, { headers: { Authorization: `Bearer ${key.token}` } });
  expect(listed.status).toBe(200);
  await server.waitFor((l) => l.auth === `api_key:${key.id}` && l.msg === 'request completed');

  const list = await cli('keys', 'list', '--owner', 'alice', '--json');
  const rows = JSON.parse(list.stdout) as Record<string, unknown>[];
  expect(rows).toEqual([expect.objectContaining({ id: key.id, owner: 'alice', scope: 'read', label: 'nightly export', revokedAt: null })]);
  expect(rows[0].lastUsedAt).toEqual(expect.any(String));
  expect(list.stdout).not.toContain(key.token);
  const text = await cli('keys', 'list');
  expect(text.stdout).toContain(`${key.id}  alice  read  active`);
  expect(text.stdout).not.toContain('stw_');

  expect((await cli('keys', 'revoke', key.id)).stdout).toBe(`revoked ${key.id}`);
  const refused = await fetch(`${base}/v1/files`, { headers: { Authorization: `Bearer ${key.token}` } });
  expect(refused.status).toBe(401);
  expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('token_revoked');
  const again = await cli('keys', 'revoke', key.id);
  expect(again.code).toBe(1);
  expect(again.stderr).toContain(`no active key ${key.id}`);
  // Nothing the server logged carries a token.
  expect(JSON.stringify(server.lines)).not.toContain('stw_');
});

it('refuses a bad owner or scope with a clear line', async () => {
  const badOwner = await cli('keys', 'create', '--owner', '../x');
  expect(badOwner.code).not.toBe(0);
  expect(badOwner.stderr).toContain("option '--owner <name>' argument '../x' is invalid");
  const badScope = await cli('keys', 'create', '--owner', 'a', '--scope', 'admin');
  expect(badScope.stderr).toContain('Allowed choices are read, write, service');
});
