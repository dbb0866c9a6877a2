/**
 * helmet's headers on every answer of the API (JSON, downloads, errors), and the upload page's
 * own Content-Security-Policy left alone: one header of each, never two. Real HTTP, raw headers.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { API_CONTENT_SECURITY_POLICY } from '../../src/http/helmet';
import { CONTENT_SECURITY_POLICY } from '../../src/web/security-headers';
import { buildTestApp, type TestApp } from '../helpers/app';

let t: TestApp;
let server: http.Server;
let base: string;
let token: string;

beforeAll(async () => {
  t = await buildTestApp();
  token = await t.key('alice');
  server = http.createServer(t.app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  await t?.close();
});

/** Every value of each response header, as sent (lower-cased names). */
function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Map<string, string[]> }> {
  return new Promise((resolve, reject) => {
    http
      .get(`${base}${path}`, { headers }, (res) => {
        const all = new Map<string, string[]>();
        for (let i = 0; i < res.rawHeaders.length; i += 2) {
          const name = res.rawHeaders[i].toLowerCase();
          all.set(name, [...(all.get(name) ?? []), res.rawHeaders[i + 1]]);
        }
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode!, headers: all }));
      })
      .on('error', reject);
  });
}

const API_HEADERS = {
  'content-security-policy': [API_CONTENT_SECURITY_POLICY],
  'x-content-type-options': ['nosniff'],
  'referrer-policy': ['no-referrer'],
  'x-frame-options': ['DENY'],
  'cross-origin-resource-policy': ['same-origin'],
  'cross-origin-opener-policy': ['same-origin'],
};

/** A download's policy is `sandbox` alone: a file shown inline (an image, a PDF) must still render, its scripts never run. */
function expectApiHeaders(headers: Map<string, string[]>, csp = API_CONTENT_SECURITY_POLICY) {
  for (const [name, values] of Object.entries({ ...API_HEADERS, 'content-security-policy': [csp] })) expect({ name, values: headers.get(name) }).toEqual({ name, values });
  // Plain http: no HSTS (see proxy.test.ts for https behind a router); nothing names the framework.
  expect(headers.has('strict-transport-security')).toBe(false);
  expect(headers.has('x-powered-by')).toBe(false);
}

it('puts the same strict headers on JSON answers, downloads and errors', async () => {
  const auth = { Authorization: `Bearer ${token}` };
  const up = await t.withToken(token).post('/v1/files').attach('file', Buffer.from('<script>alert(1)</script>'), { filename: 'x.html', contentType: 'text/html' });
  expect(up.status).toBe(201);
  const id = up.body.files[0].id as string;

  const list = await get('/v1/files', auth);
  expect(list.status).toBe(200);
  expectApiHeaders(list.headers);

  const download = await get(`/v1/files/${id}/content`, auth);
  expect(download.status).toBe(200);
  expectApiHeaders(download.headers, 'sandbox');
  // An uploaded page is an attachment, and would run nothing even if shown.
  expect(download.headers.get('content-disposition')).toEqual([expect.stringMatching(/^attachment;/)]);

  for (const [path, status] of [['/v1/files', 401], ['/v1/files/0123456789abcdef0123456789abcdef', 404], ['/healthz', 200]] as const) {
    const res = await get(path, path === '/v1/files' ? {} : auth);
    expect(res.status).toBe(status);
    expectApiHeaders(res.headers);
  }
});

it("leaves the upload page's own Content-Security-Policy as the only one, on the page and its assets", async () => {
  const page = await get('/', { Authorization: `Bearer ${token}` });
  expect(page.headers.get('content-type')).toEqual([expect.stringMatching(/^text\/html/)]);
  expect(page.headers.get('content-security-policy')).toEqual([CONTENT_SECURITY_POLICY]);
  expect(page.headers.get('x-frame-options')).toEqual(['DENY']);
  expect(page.headers.get('x-content-type-options')).toEqual(['nosniff']);
  expect(page.headers.get('referrer-policy')).toEqual(['no-referrer']);

  const css = await get('/assets/stowage.css');
  expect(css.status).toBe(200);
  expect(css.headers.get('content-security-policy')).toEqual([CONTENT_SECURITY_POLICY]);
});
