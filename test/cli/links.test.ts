import fsp from 'node:fs/promises';
import request from 'supertest';
import { buildTestApp, TEST_SECRET_KEY, type TestApp } from '../helpers/app';
import { runService } from '../helpers/service';
import { makeTempDir } from '../helpers/tmp';

let t: TestApp;
let cwd: string;
beforeEach(async () => {
  cwd = await makeTempDir();
});
afterEach(async () => {
  await t?.close();
  await fsp.rm(cwd, { recursive: true, force: true });
});

/** Runs the built CLI with only the given environment; its output and exit code. */
async function cli(args: string[], env: Record<string, string>) {
  const run = runService(args, { cwd, env });
  const code = await run.exited;
  return { code, stdout: run.lines.map((l) => (typeof l.msg === 'string' && Object.keys(l).length === 1 ? l.msg : JSON.stringify(l))), stderr: run.stderr };
}

describe('stowage links page', () => {
  it('prints a page link the server (same SECRET_KEY) opens a session with', async () => {
    t = await buildTestApp();
    await t.http('alice').post('/v1/files').attach('file', Buffer.from('hello'), 'hello.txt');
    const out = await cli(['links', 'page', '--owner', 'alice', '--expires', '2h', '--base-url', 'https://files.example.com/', '--json'], { SECRET_KEY: TEST_SECRET_KEY });
    expect(out.code).toBe(0);
    const link = JSON.parse(out.stdout[0]!) as { url: string; expiresAt: string };
    expect(link.url).toMatch(/^https:\/\/files\.example\.com\/v1\/page-links\/[\w-]+\.[\w-]{43}$/);
    const lifetime = Date.parse(link.expiresAt) - Date.now();
    expect(lifetime).toBeGreaterThan(2 * 3600_000 - 60_000);
    expect(lifetime).toBeLessThanOrEqual(2 * 3600_000);

    const opened = await request(t.app).get(new URL(link.url).pathname);
    expect(opened.status).toBe(200);
    const cookie = ([] as string[]).concat(opened.headers['set-cookie'] ?? [])[0]!.split(';')[0]!;
    const page = await request(t.app).get('/').set('Cookie', cookie);
    expect(page.status).toBe(200);
    expect(page.text).toContain('hello.txt');
    expect(page.text).toContain('Files of <strong>alice</strong>');
  });

  it('defaults to http://localhost:$PORT and 8 hours, printing the URL alone on stdout', async () => {
    const out = await cli(['links', 'page', '--owner', 'bob'], { SECRET_KEY: TEST_SECRET_KEY, PORT: '4321' });
    expect(out.code).toBe(0);
    expect(out.stdout).toHaveLength(1);
    expect(out.stdout[0]).toMatch(/^http:\/\/localhost:4321\/v1\/page-links\/[\w-]+\.[\w-]{43}$/);
    expect(out.stderr.join('\n')).toMatch(/a page link for bob, until \S+Z/);
  });

  it('refuses without SECRET_KEY, a bad owner or a lifetime over 7 days, with one clear line', async () => {
    const missing = await cli(['links', 'page', '--owner', 'alice'], {});
    expect(missing.code).toBe(1);
    expect(missing.stdout).toEqual([]);
    expect(missing.stderr.join('\n')).toContain('SECRET_KEY: required to make a page link');
    const long = await cli(['links', 'page', '--owner', 'alice', '--expires', '8d'], { SECRET_KEY: TEST_SECRET_KEY });
    expect(long.code).toBe(1);
    expect(long.stderr.join('\n')).toContain('expected a duration from 1s to 7d');
    const owner = await cli(['links', 'page', '--owner', 'not valid'], { SECRET_KEY: TEST_SECRET_KEY });
    expect(owner.code).toBe(1);
  });
});
