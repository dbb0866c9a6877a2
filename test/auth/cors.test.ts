/**
 * CORS_ORIGINS: a browser app on another origin calls the API with its user's JWT. Preflights
 * are answered before authentication; the headers the app needs are readable from its scripts;
 * an origin not in the list is refused by the browser itself (real Chromium, real HTTP servers on
 * three loopback ports).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT } from 'jose';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import request from 'supertest';
import { CORS_MAX_AGE_S } from '../../src/http/cors';
import { buildTestApp, type TestApp } from '../helpers/app';
import { launchChromium, type PageServer, startPageServer } from '../helpers/browser';

const JWT_SECRET = 'host-app-jwt-secret-0123456789abcdefghij';

function jwtFor(sub: string, scope?: string): Promise<string> {
  return new SignJWT(scope ? { scope } : {})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(new TextEncoder().encode(JWT_SECRET));
}

/** A browser app's origin: a plain page on its own loopback port. */
async function startOrigin(): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((_req, res) => {
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.end('<!doctype html><title>host app</title><p>host app</p>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('CORS over plain HTTP', () => {
  let t: TestApp;
  afterEach(async () => t?.close());

  const ORIGIN = 'http://127.0.0.1:5173';

  it('answers a preflight from a listed origin with 204 before any credentials, allowing the API headers', async () => {
    t = await buildTestApp({ CORS_ORIGINS: `${ORIGIN},https://app.example.com` });
    for (const path of ['/v1/files', '/v1/files/0123456789abcdef0123456789abcdef/content', '/metrics', '/v1/nowhere']) {
      const res = await request(t.app)
        .options(path)
        .set('Origin', ORIGIN)
        .set('Access-Control-Request-Method', 'POST')
        .set('Access-Control-Request-Headers', 'authorization,content-type,x-owner,range,if-none-match,if-range');
      expect(res.status).toBe(204);
      expect(res.headers['access-control-allow-origin']).toBe(ORIGIN);
      expect(res.headers['access-control-allow-credentials']).toBeUndefined();
      expect(res.headers['access-control-allow-methods']?.split(',')).toEqual(expect.arrayContaining(['GET', 'HEAD', 'POST', 'DELETE']));
      expect(res.headers['access-control-allow-headers']?.toLowerCase().split(',')).toEqual(
        expect.arrayContaining(['authorization', 'content-type', 'x-owner', 'range', 'if-none-match', 'if-range', 'stowage-expires-in']),
      );
      expect(res.headers['access-control-max-age']).toBe(String(CORS_MAX_AGE_S));
      expect(res.headers.vary).toMatch(/Origin/);
      expect(res.headers['www-authenticate']).toBeUndefined();
    }
  });

  it('names a listed origin on actual responses, exposing Location, ETag, Content-Range, Content-Disposition and X-Request-Id', async () => {
    t = await buildTestApp({ CORS_ORIGINS: 'HTTPS://App.Example.com:443,' + ORIGIN });
    // Configured origins are compared as browsers send them (lower case, no default port).
    expect(t.config.auth.corsOrigins).toEqual(['https://app.example.com', ORIGIN]);
    const res = await t.http('alice').get('/v1/files').set('Origin', 'https://app.example.com');
    expect(res.status).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(res.headers['access-control-expose-headers']?.split(',')).toEqual(
      expect.arrayContaining(['Location', 'ETag', 'Content-Range', 'Content-Disposition', 'X-Request-Id']),
    );
    // Refusals carry it too, so the app can read why (401 with WWW-Authenticate).
    const refused = await request(t.app).get('/v1/files').set('Origin', ORIGIN);
    expect(refused.status).toBe(401);
    expect(refused.headers['access-control-allow-origin']).toBe(ORIGIN);
  });

  it('gives an origin not in the list no Access-Control-Allow-Origin (the browser refuses it), and a preflight never counts as a failed attempt', async () => {
    t = await buildTestApp({ CORS_ORIGINS: ORIGIN, AUTH_FAILURES_PER_15M: '1' });
    for (let i = 0; i < 3; i++) {
      const pre = await request(t.app).options('/v1/files').set('Origin', 'http://127.0.0.1:6666').set('Access-Control-Request-Method', 'GET');
      expect(pre.status).toBe(204);
      expect(pre.headers['access-control-allow-origin']).toBeUndefined();
    }
    const res = await t.http('alice').get('/v1/files').set('Origin', 'http://127.0.0.1:6666');
    expect(res.status).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('sends no CORS headers at all without CORS_ORIGINS, and a preflight there is just an unauthenticated request', async () => {
    t = await buildTestApp();
    const pre = await request(t.app).options('/v1/files').set('Origin', ORIGIN).set('Access-Control-Request-Method', 'GET');
    expect(pre.status).toBe(401);
    expect(pre.headers['access-control-allow-origin']).toBeUndefined();
    const res = await t.http('alice').get('/v1/files').set('Origin', ORIGIN);
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('a browser app on another origin, with its JWT (Chromium)', () => {
  let browser: Browser;
  let context: BrowserContext;
  let api: PageServer;
  let app: Awaited<ReturnType<typeof startOrigin>>;
  let stranger: Awaited<ReturnType<typeof startOrigin>>;

  beforeAll(async () => {
    browser = await launchChromium();
    app = await startOrigin();
    stranger = await startOrigin();
    api = await startPageServer({ AUTH_JWT_SECRET: JWT_SECRET, CORS_ORIGINS: app.url }, { devMode: false });
  });
  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await api?.close();
    await app?.close();
    await stranger?.close();
  });

  async function pageAt(origin: string): Promise<Page> {
    context = await browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    await page.goto(`${origin}/`);
    return page;
  }

  /** Runs `body` (an async function body) in the page; the DOM library isn't in the tests' types, so it goes as a string. */
  function inPage<T>(page: Page, vars: Record<string, unknown>, body: string): Promise<T> {
    const decls = Object.entries(vars).map(([k, v]) => `const ${k} = ${JSON.stringify(v)};`).join('\n');
    return page.evaluate(`(async () => { ${decls}\n${body} })()`) as Promise<T>;
  }

  it('uploads, lists, downloads (whole, ranged, revalidated), queues a report and deletes, reading ETag, Content-Disposition, Content-Range and Location from JS', async () => {
    const page = await pageAt(app.url);
    const token = await jwtFor('alice');
    const result = await inPage<Record<string, unknown>>(
      page,
      { api: api.url, token },
      `
      const auth = { Authorization: 'Bearer ' + token };
      const out = {};
      const form = new FormData();
      form.append('file', new Blob(['name,qty\\nZoë,3\\nAda,5\\n'], { type: 'text/csv' }), 'sales q3.csv');
      const up = await fetch(api + '/v1/files', { method: 'POST', headers: auth, body: form });
      out.uploadStatus = up.status;
      out.uploadRequestId = up.headers.get('X-Request-Id');
      const id = (await up.json()).files[0].id;

      const list = await fetch(api + '/v1/files', { headers: auth });
      out.listStatus = list.status;
      out.listed = (await list.json()).files.map((f) => f.name);

      const dl = await fetch(api + '/v1/files/' + id + '/content', { headers: auth, cache: 'no-store' });
      out.downloadStatus = dl.status;
      out.etag = dl.headers.get('ETag');
      out.disposition = dl.headers.get('Content-Disposition');
      out.contentType = dl.headers.get('Content-Type');
      out.body = await dl.text();

      const part = await fetch(api + '/v1/files/' + id + '/content', { headers: { ...auth, Range: 'bytes=0-3' }, cache: 'no-store' });
      out.rangeStatus = part.status;
      out.contentRange = part.headers.get('Content-Range');
      out.rangeBody = await part.text();

      // The default cache mode (Chromium sends Cache-Control: max-age=0). With 'no-store' or
      // 'reload' it sends Cache-Control: no-cache, and Express's req.fresh then answers in full (200).
      const again = await fetch(api + '/v1/files/' + id + '/content', { headers: { ...auth, 'If-None-Match': out.etag } });
      out.revalidateStatus = again.status;

      const report = await fetch(api + '/v1/reports', {
        method: 'POST',
        headers: { ...auth, 'Content-Type': 'application/json' },
        body: JSON.stringify({ format: 'csv', title: 'T', columns: [{ key: 'a', header: 'A', type: 'string' }], rows: [{ a: 'x' }] }),
      });
      out.reportStatus = report.status;
      out.location = report.headers.get('Location');

      const del = await fetch(api + '/v1/files/' + id, { method: 'DELETE', headers: auth });
      out.deleteStatus = del.status;

      const anon = await fetch(api + '/v1/files');
      out.anonStatus = anon.status;
      out.anonChallenge = anon.headers.get('WWW-Authenticate');
      return out;
      `,
    );
    expect(result).toEqual({
      uploadStatus: 201,
      uploadRequestId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      listStatus: 200,
      listed: ['sales q3.csv'],
      downloadStatus: 200,
      etag: expect.stringMatching(/^"[0-9a-f]+"$/),
      disposition: expect.stringMatching(/^attachment; filename="sales q3.csv"/),
      contentType: expect.stringMatching(/^text\/csv/),
      body: 'name,qty\nZoë,3\nAda,5\n',
      rangeStatus: 206,
      contentRange: expect.stringMatching(/^bytes 0-3\/\d+$/),
      rangeBody: 'name',
      revalidateStatus: 304,
      reportStatus: 202,
      location: expect.stringMatching(/^\/v1\/tasks\/[0-9a-f]{32}$/),
      deleteStatus: 204,
      anonStatus: 401,
      anonChallenge: 'Bearer',
    });

    // The browser preflighted (Authorization is not a simple header), and the preflights were
    // answered without credentials; the API knew the caller by the JWT's subject.
    const lines = api.logs.lines.filter((l) => (l as { req?: { method?: string } }).req?.method === 'OPTIONS' && l.msg === 'request completed');
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.map((l) => (l as { res?: { statusCode?: number } }).res?.statusCode)).toEqual(lines.map(() => 204));
    const upload = api.logs.lines.find((l) => (l as { req?: { method?: string; url?: string } }).req?.method === 'POST' && l.msg === 'request completed');
    expect(upload).toMatchObject({ auth: 'jwt:alice', owner: 'alice' });
  });

  it('refuses, in the browser, an origin that is not in CORS_ORIGINS, even with a valid JWT', async () => {
    const page = await pageAt(stranger.url);
    const token = await jwtFor('alice');
    const result = await inPage<Record<string, unknown>>(
      page,
      { api: api.url, token },
      `
      const attempt = async (init) => {
        try {
          const res = await fetch(api + '/v1/files', init);
          return 'answered ' + res.status;
        } catch (err) {
          return err.name;
        }
      };
      return {
        withToken: await attempt({ headers: { Authorization: 'Bearer ' + token } }),
        simple: await attempt({}),
      };
      `,
    );
    // fetch rejects with a TypeError: the script never sees an answer.
    expect(result).toEqual({ withToken: 'TypeError', simple: 'TypeError' });
  });
});
