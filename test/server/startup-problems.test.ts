import fsp from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { startPostgres, type PostgresServer } from '../helpers/postgres';
import { runService } from '../helpers/service';
import { makeTempDir } from '../helpers/tmp';

/**
 * Settings an operator gets wrong are one line each, naming the variable and the cause, and a
 * password never reaches the output (the built CLI, as a platform runs it).
 */

const PASSWORD = 'pa55:w/rd@db';
let pg: PostgresServer;
let dir: string;
beforeAll(async () => {
  pg = await startPostgres({ password: PASSWORD });
});
afterAll(() => pg.stop());
beforeEach(async () => {
  dir = await makeTempDir();
});
afterEach(() => fsp.rm(dir, { recursive: true, force: true }));

async function start(env: Record<string, string>) {
  const svc = runService(['serve'], { cwd: dir, env: { STORAGE: 'volume', STORAGE_PATH: path.join(dir, 'files'), PORT: '0', ...env } });
  const code = await svc.exited;
  return { code, stderr: svc.stderr, output: [...svc.stderr, ...svc.lines.map((l) => JSON.stringify(l))].join('\n') };
}

const url = (user: string, password: string, db: string) => `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${pg.port}/${db}`;

it.each([
  ['a wrong password', () => url('postgres', 'not-the-password', 'postgres'), /^ {2}DATABASE_URL: PostgreSQL at 127\.0\.0\.1:\d+ refused user "postgres": wrong password or user \(postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/postgres\)$/],
  ['a database that does not exist', () => url('postgres', PASSWORD, 'nope'), /^ {2}DATABASE_URL: database "nope" does not exist on 127\.0\.0\.1:\d+ \(create it, or fix the name\)/],
  ['nothing listening', () => `postgres://postgres:${encodeURIComponent(PASSWORD)}@127.0.0.1:1/stowage`, /^ {2}DATABASE_URL: nothing accepts connections at 127\.0\.0\.1:1 \(is PostgreSQL running there\?\)/],
  ['a URL that does not parse', () => `postgres://postgres:${PASSWORD}@[127.0.0.1/x`, /^ {2}DATABASE_URL: "postgres:\/\/postgres:\*\*\*@.*" must be a postgres:\/\/ URL/],
])('%s is one line naming DATABASE_URL, with the password hidden', async (_what, databaseUrl, line) => {
  const { code, stderr, output } = await start({ DATABASE_URL: databaseUrl() });
  expect(code).toBe(1);
  expect(stderr).toEqual(['stowage: cannot start', expect.stringMatching(line)]);
  expect(output).not.toContain('pa55');
  expect(output).not.toContain('not-the-password');
});

it('a port already in use is one line naming PORT', async () => {
  const taken = http.createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const { port } = taken.address() as AddressInfo;
  try {
    const { code, stderr } = await start({ PORT: String(port) });
    expect(code).toBe(1);
    expect(stderr).toEqual(['stowage: cannot start', `  PORT: ${port} is already in use on 127.0.0.1 (stop what is listening there, or set PORT to a free port)`]);
  } finally {
    taken.close();
  }
});

it('secrets given in a bad form are named, never echoed', async () => {
  const { code, stderr } = await start({ SECRET_KEY: 'short-secret', METRICS_TOKEN: 'tiny' });
  expect(code).toBe(1);
  expect(stderr[0]).toBe('stowage: cannot start');
  expect(stderr.slice(1).sort()).toEqual([
    '  METRICS_TOKEN: must be at least 16 characters (it guards GET /metrics)',
    '  SECRET_KEY: must be at least 32 characters (generate one with: openssl rand -base64 48)',
  ]);
});
