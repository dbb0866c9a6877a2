/**
 * The built server as deployed (bound to 0.0.0.0, SECRET_KEY set, no credentials sent) answers
 * 401 to every /v1 route; on loopback with no keys it still serves plain curl (the quick start).
 * And who may read /metrics: METRICS_TOKEN or a service key.
 */
import { execFile } from 'node:child_process';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import request from 'supertest';
import { ROUTE_TABLE } from '../../src/auth/route-table';
import { buildTestApp, type TestApp, TEST_SECRET_KEY } from '../helpers/app';
import { freePort, ROOT, runService, type ServiceProcess } from '../helpers/service';
import { makeTempDir } from '../helpers/tmp';

const execFileAsync = promisify(execFile);
const ID = '0123456789abcdef0123456789abcdef';

describe('the built server', () => {
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

  const env = (port: number, extra: Record<string, string> = {}) => ({
    STORAGE: 'volume',
    STORAGE_PATH: path.join(dir, 'files'),
    PORT: String(port),
    WORKERS: '0',
    LOG_LEVEL: 'info',
    ...extra,
  });

  it('on 0.0.0.0 answers 401 with WWW-Authenticate to every /v1 route without credentials, and serves a key made by stowage keys create', async () => {
    const port = await freePort();
    server = runService(['serve'], { cwd: dir, env: env(port, { HOST: '0.0.0.0', SECRET_KEY: TEST_SECRET_KEY }) });
    await server.waitFor((l) => l.msg === 'listening');
    const base = `http://127.0.0.1:${port}`;

    const routes = Object.entries(ROUTE_TABLE)
      .filter(([route, access]) => route.split(' ')[1].startsWith('/v1/') && access !== 'public')
      .map(([route]) => route.replaceAll(':id', ID));
    expect(routes.length).toBeGreaterThanOrEqual(13);
    for (const route of [...routes, 'GET /v1/no-such-route', 'POST /v1/files/x/y', 'GET /metrics']) {
      const [method, url] = route.split(' ');
      const res = await fetch(`${base}${url}`, { method, headers: { 'X-Owner': 'alice' } });
      const body = method === 'HEAD' ? undefined : ((await res.json()) as { error: { code: string } });
      expect({ route, status: res.status, challenge: res.headers.get('www-authenticate'), code: body?.error.code }).toEqual({
        route,
        status: 401,
        challenge: 'Bearer',
        code: method === 'HEAD' ? undefined : 'unauthenticated',
      });
    }
    // What needs no credentials still answers.
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/v1/openapi.json`)).status).toBe(200);
    expect(server.lines.filter((l) => /dev mode/.test(l.msg))).toEqual([]);

    // The operator's way in: a key from the CLI, against the same catalog.
    const { stdout } = await execFileAsync(process.execPath, [path.join(ROOT, 'dist/src/cli/index.js'), 'keys', 'create', '--owner', 'alice', '--scope', 'read', '--json'], {
      cwd: dir,
      env: { PATH: process.env.PATH, ...env(port, { HOST: '0.0.0.0', SECRET_KEY: TEST_SECRET_KEY, LOG_LEVEL: 'silent' }) },
    });
    const { token } = JSON.parse(stdout) as { token: string };
    const listed = await fetch(`${base}/v1/files`, { headers: { Authorization: `Bearer ${token}` } });
    expect(listed.status).toBe(200);
    expect(await listed.json()).toEqual({ files: [], nextCursor: null });
    // A read key may not upload.
    const upload = await fetch(`${base}/v1/files`, { method: 'POST', headers: { Authorization: `Bearer ${token}` }, body: new FormData() });
    expect(upload.status).toBe(403);
  });

  it('on loopback with no keys (the quick start) serves plain requests as the owner local, and says so in its log', async () => {
    const port = await freePort();
    server = runService(['serve'], { cwd: dir, env: env(port) });
    await server.waitFor((l) => l.msg === 'listening');
    const warning = await server.waitFor((l) => /dev mode/.test(l.msg));
    expect(warning).toMatchObject({ owner: 'local' });
    const form = new FormData();
    form.append('file', new Blob(['hello']), 'hello.txt');
    expect((await fetch(`http://127.0.0.1:${port}/v1/files`, { method: 'POST', body: form })).status).toBe(201);
    const list = (await (await fetch(`http://127.0.0.1:${port}/v1/files`)).json()) as { files: { name: string; owner?: string }[] };
    expect(list.files.map((f) => f.name)).toEqual(['hello.txt']);
  });
});

describe('GET /metrics', () => {
  let t: TestApp;
  afterEach(async () => t?.close());

  const scrape = (token?: string) => {
    const req = request(t.app).get('/metrics');
    return token ? req.set('Authorization', `Bearer ${token}`) : req;
  };

  it('needs METRICS_TOKEN or a service key outside dev mode; a user key gets 403, and the metrics token opens nothing else', async () => {
    const metricsToken = 'metrics-token-0123456789abcdef';
    t = await buildTestApp({ METRICS_TOKEN: metricsToken });
    expect((await scrape()).status).toBe(401);
    expect((await scrape('not-the-token')).status).toBe(401);
    expect((await scrape(metricsToken)).status).toBe(200);
    expect((await scrape(await t.key('ops', 'service'))).status).toBe(200);
    const user = await scrape(await t.key('alice', 'write'));
    expect(user.status).toBe(403);
    expect(user.body.error.code).toBe('insufficient_scope');
    expect(user.headers['www-authenticate']).toBe('Bearer error="insufficient_scope"');
    const elsewhere = await request(t.app).get('/v1/files').set('Authorization', `Bearer ${metricsToken}`);
    expect(elsewhere.status).toBe(401);
    expect(elsewhere.body.error.code).toBe('token_invalid');
  });

  it('without METRICS_TOKEN, takes a service key only', async () => {
    t = await buildTestApp();
    expect((await scrape()).status).toBe(401);
    expect((await scrape(await t.key('ops', 'service'))).status).toBe(200);
    expect((await scrape(await t.key('alice', 'write'))).status).toBe(403);
  });
});
