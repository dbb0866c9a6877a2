import request from 'supertest';
import { ROUTE_TABLE } from '../../src/auth/route-table';
import { buildTestApp, type TestApp } from '../helpers/app';

/** API keys against the real app: scopes, owners, expiry, revocation, tampering, rate limits. */

let t: TestApp;
afterEach(() => t?.close());

const NEVER = '0123456789abcdef0123456789abcdef';

async function aliceFileAndTask() {
  const up = await t.http('alice').post('/v1/files').attach('file', Buffer.from('name,qty\nx,1\n'), 'sales.csv');
  expect(up.status).toBe(201);
  const report = await t.http('alice').post('/v1/reports').send({ format: 'csv', title: 'R', columns: [{ key: 'a', header: 'A', type: 'integer' }], rows: [{ a: 1 }] });
  expect(report.status).toBe(202);
  return { fileId: up.body.files[0].id as string, taskId: report.body.id as string };
}

describe('another owner', () => {
  it('gets exactly what an id that never existed gets, on every id-taking route', async () => {
    t = await buildTestApp({ WORKERS: '0' });
    const { fileId, taskId } = await aliceFileAndTask();
    const routes = Object.keys(ROUTE_TABLE).filter((r) => r.includes(':id'));
    expect(routes.length).toBeGreaterThanOrEqual(8);
    for (const route of routes) {
      const [method, path] = route.split(' ');
      const id = path.startsWith('/v1/tasks') ? taskId : fileId;
      const call = (token: ReturnType<TestApp['http']>, which: string) => token[method.toLowerCase() as 'get'](path.replace(':id', which));
      const theirs = await call(t.http('bob'), id);
      const nobodys = await call(t.http('bob'), NEVER);
      expect({ route, status: theirs.status, code: theirs.body?.error?.code }).toEqual({ route, status: nobodys.status, code: nobodys.body?.error?.code });
      expect([404, 303]).toContain(theirs.status);
    }
    // Alice's file and task are untouched by Bob's deletes and cancels.
    expect((await t.http('alice').get(`/v1/files/${fileId}`)).body.status).toBe('ready');
    expect((await t.http('alice').get(`/v1/tasks/${taskId}`)).body.status).toBe('queued');
  });
});

describe('scopes', () => {
  it('a read key lists and downloads but may not upload, delete or ask for reports', async () => {
    t = await buildTestApp();
    const { fileId } = await aliceFileAndTask();
    const read = t.withToken(await t.key('alice', 'read'));
    expect((await read.get('/v1/files')).body.files).toHaveLength(1);
    expect((await read.get(`/v1/files/${fileId}/content`)).text).toContain('name,qty');
    for (const res of [
      await read.post('/v1/files').attach('file', Buffer.from('x'), 'x.txt'),
      await read.delete(`/v1/files/${fileId}`),
      await read.post('/v1/reports').send({ format: 'csv', title: 'R', columns: [{ key: 'a', header: 'A', type: 'integer' }], rows: [] }),
    ]) {
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('insufficient_scope');
      expect(res.headers['www-authenticate']).toBe('Bearer error="insufficient_scope"');
    }
    expect((await t.http('alice').get('/v1/files')).body.files).toHaveLength(1);
  });

  it('only a service key acts for another owner with X-Owner; others get 403 owner_not_allowed', async () => {
    t = await buildTestApp();
    const { fileId } = await aliceFileAndTask();
    const service = t.withToken(await t.key('backend', 'service'));
    const asAlice = await service.get('/v1/files').set('X-Owner', 'alice');
    expect(asAlice.body.files.map((f: { id: string }) => f.id)).toEqual([fileId]);
    const upload = await service.post('/v1/files').set('X-Owner', 'carol').attach('file', Buffer.from('for carol'), 'c.txt');
    expect(upload.status).toBe(201);
    expect((await t.http('carol').get('/v1/files')).body.files.map((f: { name: string }) => f.name)).toEqual(['c.txt']);
    expect((await service.get('/v1/files').set('X-Owner', '../etc')).body.error.code).toBe('invalid_owner');

    for (const token of [await t.key('bob', 'write'), await t.key('bob', 'read')]) {
      const res = await t.withToken(token).get('/v1/files').set('X-Owner', 'alice');
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('owner_not_allowed');
    }
    // Naming yourself is fine.
    expect((await t.http('alice').get('/v1/files').set('X-Owner', 'alice')).status).toBe(200);
  });
});

describe('tokens that do not prove anything', () => {
  it('answers 401 with the reason: expired, revoked, tampered, unknown, malformed', async () => {
    t = await buildTestApp();
    const expired = await t.key('alice', 'write', { expiresAt: new Date(Date.now() - 1000) });
    const revoked = await t.resources.keys.create({ owner: 'alice', scope: 'write' });
    const revokedToken = revoked.token;
    expect(await t.resources.keys.revoke(revoked.id)).toBe(true);
    const good = await t.key('alice', 'write');
    const tampered = good.slice(0, -2) + (good.endsWith('AA') ? 'BB' : 'AA');

    const cases: [string, string][] = [
      [`Bearer ${expired}`, 'token_expired'],
      [`Bearer ${revokedToken}`, 'token_revoked'],
      [`Bearer ${tampered}`, 'token_invalid'],
      ['Bearer stw_unknown', 'token_invalid'],
      ['Bearer not-a-key-or-jwt', 'token_invalid'],
      ['Basic YWxpY2U6c2VjcmV0', 'token_invalid'],
    ];
    for (const [authorization, code] of cases) {
      const res = await request(t.app).get('/v1/files').set('Authorization', authorization);
      expect({ authorization, status: res.status, code: res.body.error.code }).toEqual({ authorization, status: 401, code });
      expect(res.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
    }
    expect((await t.withToken(good).get('/v1/files')).status).toBe(200);
  });

  it('records when a key was last used, and never logs the token', async () => {
    t = await buildTestApp();
    const token = await t.key('alice', 'read');
    const [key] = (await t.resources.keys.list('alice')).filter((k) => k.scope === 'read');
    expect(key.last_used_at).toBeNull();
    expect((await t.withToken(token).get('/v1/files')).status).toBe(200);
    await t.logs.waitFor((l) => l.auth === `api_key:${key.id}`);
    const used = await new Promise<string | null>((resolve) => {
      const poll = async (): Promise<void> => {
        const [now] = (await t.resources.keys.list('alice')).filter((k) => k.id === key.id);
        return now.last_used_at ? resolve(now.last_used_at) : void setImmediate(poll);
      };
      void poll();
    });
    expect(used).not.toBeNull();
    expect(JSON.stringify(t.logs.lines)).not.toContain(token);
  });
});

describe('failed attempts', () => {
  it('are limited per client address: past the limit, 429 with Retry-After; successful requests do not count', async () => {
    t = await buildTestApp({ AUTH_FAILURES_PER_15M: '3' });
    for (let i = 0; i < 5; i++) expect((await t.http('alice').get('/v1/files')).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await request(t.app).get('/v1/files').set('Authorization', 'Bearer stw_guess')).status).toBe(401);
    const limited = await request(t.app).get('/v1/files').set('Authorization', 'Bearer stw_guess');
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe('too_many_attempts');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
  });
});
