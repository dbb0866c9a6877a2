import request from 'supertest';
import { accessFor, ROUTE_TABLE } from '../../src/auth/route-table';
import { registeredRoutes } from '../../src/http/registered-routes';
import { buildTestApp, type TestApp } from '../helpers/app';

/**
 * Every route the app registers is listed with who may call it, and a route that needs
 * credentials answers 401 without them: a new route cannot ship open.
 */

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp({ STORAGE_MIRROR: undefined, FLY_MACHINE_ID: 'machine-a', FLY_REPLAY: 'on' });
});
afterAll(() => t.close());

const ID = '0123456789abcdef0123456789abcdef';
const concrete = (path: string) => path.replace(/:\w+/g, ID);

it('lists every registered route (the Fly routes included) and lists nothing the app does not serve', () => {
  const registered = registeredRoutes(t.app).map((r) => `${r.method} ${r.path}`);
  const unlisted = registered.filter((r) => !(r in ROUTE_TABLE) && !(r.startsWith('HEAD ') && `GET ${r.slice(5)}` in ROUTE_TABLE));
  expect(unlisted).toEqual([]);
  const unserved = Object.keys(ROUTE_TABLE).filter((r) => !registered.includes(r));
  expect(unserved).toEqual([]);
});

it('answers 401 with WWW-Authenticate: Bearer to every route that is not public, when no credentials are sent', async () => {
  const closed = Object.entries(ROUTE_TABLE).filter(([, access]) => access !== 'public' && access !== 'optional');
  expect(closed.length).toBeGreaterThan(10);
  for (const [route] of closed) {
    const [method, path] = route.split(' ');
    const res = await request(t.app)[method.toLowerCase() as 'get'](concrete(path));
    expect({ route, status: res.status, challenge: res.headers['www-authenticate'] }).toEqual({ route, status: 401, challenge: 'Bearer' });
    // A HEAD answer has no body to carry the code.
    if (method !== 'HEAD') expect(res.body.error.code).toBe('unauthenticated');
  }
});

it('answers 401 for a path no route serves too, so a stranger learns nothing of what exists', async () => {
  expect((await request(t.app).get('/v1/secret-admin')).status).toBe(401);
  expect((await t.http().get('/v1/secret-admin')).status).toBe(404);
});

it('keeps the public routes public', async () => {
  for (const path of ['/healthz', '/readyz', '/v1/openapi.json']) expect((await request(t.app).get(path)).status).toBe(200);
  expect(accessFor('GET', '/assets/stowage.css')).toBe('public');
  expect(accessFor('HEAD', '/v1/files/abc/content')).toBe('read');
  expect(accessFor('GET', '/v1/files/')).toBe('read');
});

it('refuses to build an app with a route the table does not list', async () => {
  const express = (await import('express')).default;
  const { unlistedRoutes } = await import('../../src/auth/route-table');
  const app = express();
  app.get('/v1/files', () => undefined);
  app.post('/v1/admin/wipe', () => undefined);
  expect(unlistedRoutes(registeredRoutes(app))).toEqual(['POST /v1/admin/wipe']);
});
