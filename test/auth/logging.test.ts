/**
 * Log lines say who called (the key id, the JWT subject), never a token, a cookie or a signed
 * URL's signature; and `stowage keys list` shows when a key was last used.
 */
import path from 'node:path';
import { SignJWT } from 'jose';
import request from 'supertest';
import { REDACTED } from '../../src/http/logging';
import { buildTestApp, type LogLine, type TestApp } from '../helpers/app';
import { configProblems } from '../helpers/config';
import { runService } from '../helpers/service';

const JWT_SECRET = 'host-app-jwt-secret-0123456789abcdefghij';

let t: TestApp;
afterEach(async () => t?.close());

type RequestLine = LogLine & { req: { method: string; url: string }; res: { statusCode: number } };

/** The one-per-request "request completed" line of the request to `url`. */
function completed(url: string): Promise<RequestLine> {
  return t.logs.waitFor((l) => l.msg === 'request completed' && (l as RequestLine).req?.url === url) as Promise<RequestLine>;
}

const everything = () => t.logs.lines.map((l) => JSON.stringify(l)).join('\n');

describe('request logs', () => {
  it('name the API key by its id and the owner it acted for, never the token, a cookie or a secret query value', async () => {
    t = await buildTestApp();
    const key = await t.resources.keys.create({ owner: 'alice', scope: 'write' });
    const service = await t.resources.keys.create({ owner: 'backend', scope: 'service' });

    const res = await request(t.app)
      .get('/v1/files?limit=5&token=query-secret-123&sig=signature-456')
      .set('Authorization', `Bearer ${key.token}`)
      .set('Cookie', 'stowage_session=cookie-secret-789');
    expect(res.status).toBe(200);
    const line = await completed(`/v1/files?limit=5&token=${REDACTED}&sig=${REDACTED}`);
    expect(line).toMatchObject({ auth: `api_key:${key.id}`, owner: 'alice', res: { statusCode: 200 } });

    // A service key acting for a user: the key is named, and the owner it acted for.
    await request(t.app).get('/v1/files').set('Authorization', `Bearer ${service.token}`).set('X-Owner', 'bob').expect(200);
    expect(await completed('/v1/files')).toMatchObject({ auth: `api_key:${service.id}`, owner: 'bob' });

    // Lines the handlers write carry it too (here: the 404's).
    await request(t.app).get('/v1/files/0123456789abcdef0123456789abcdef').set('Authorization', `Bearer ${key.token}`).expect(404);
    const notFound = await t.logs.waitFor((l) => l.code === 'not_found');
    expect(notFound).toMatchObject({ auth: `api_key:${key.id}`, owner: 'alice' });

    // A refused token is not logged either.
    const guess = 'stw_this-is-a-guess-that-must-not-be-logged';
    await request(t.app).get('/v1/tasks').set('Authorization', `Bearer ${guess}`).expect(401);
    expect(await completed('/v1/tasks')).not.toHaveProperty('auth');

    const logged = everything();
    for (const secret of [key.token, service.token, guess, 'query-secret-123', 'signature-456', 'cookie-secret-789']) {
      expect({ secret, logged: logged.includes(secret) }).toEqual({ secret, logged: false });
    }
  });

  it("name a JWT's caller by its subject, never the token", async () => {
    t = await buildTestApp({ AUTH_JWT_SECRET: JWT_SECRET });
    const jwt = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('carol@example.com')
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(JWT_SECRET));
    await request(t.app).get('/v1/files').set('Authorization', `Bearer ${jwt}`).expect(200);
    expect(await completed('/v1/files')).toMatchObject({ auth: 'jwt:carol@example.com', owner: 'carol@example.com' });
    expect(everything()).not.toContain(jwt);
    // Nor any part of it (the signature alone is enough to tell it).
    expect(everything()).not.toContain(jwt.split('.')[2]);
  });

  it("say the owner once on an upload's lines, stored or failed, and a failure's code", async () => {
    t = await buildTestApp();
    await t.http('alice').post('/v1/files').attach('file', Buffer.from('hello'), 'a.txt').expect(201);
    await t.http('alice').post('/v1/files').field('note', 'no file').expect(400);
    const lines = [await t.logs.waitFor((l) => l.msg === 'upload stored'), await t.logs.waitFor((l) => l.msg === 'upload failed')];
    for (const line of lines) expect(line).toMatchObject({ auth: expect.stringMatching(/^api_key:/), owner: 'alice' });
    expect(t.logs.malformed).toEqual([]);
    // A client's mistake is named by its code, without a stack trace of the server's code.
    expect(lines[1]).toMatchObject({ event: 'upload', outcome: 'failed', code: 'no_files' });
    expect(lines[1]).not.toHaveProperty('err');
  });

  it('redact authorization and cookie headers wherever a request or response is logged with them', async () => {
    t = await buildTestApp();
    const headers = { authorization: 'Bearer stw_secret', cookie: 'stowage_session=secret', 'set-cookie': ['stowage_session=secret'], accept: '*/*' };
    t.logs.log.info({ req: { headers }, res: { headers }, headers }, 'with headers');
    const line = await t.logs.waitFor((l) => l.msg === 'with headers');
    const expected = { authorization: REDACTED, cookie: REDACTED, 'set-cookie': REDACTED, accept: '*/*' };
    expect(line).toMatchObject({ req: { headers: expected }, res: { headers: expected }, headers: expected });
    expect(JSON.stringify(line)).not.toContain('secret');
  });
});

describe('startup errors', () => {
  it('say what is wrong with a secret without repeating it', () => {
    const env = { SECRET_KEY: 'short-secret-key', AUTH_JWT_SECRET: 'short-jwt-secret', METRICS_TOKEN: 'metrics', PORT: 'eighty' };
    const problems = configProblems(env);
    expect(problems).toEqual(
      expect.arrayContaining([
        'SECRET_KEY: must be at least 32 characters (generate one with: openssl rand -base64 48)',
        expect.stringMatching(/^AUTH_JWT_SECRET: must be at least 32 characters/),
        expect.stringMatching(/^METRICS_TOKEN: must be at least 16 characters/),
        // Other values are still shown, to spot a typo.
        'PORT: "eighty" must be a port number',
      ]),
    );
    for (const secret of ['short-secret-key', 'short-jwt-secret', '"metrics"']) expect(problems.join('\n')).not.toContain(secret);
  });
});

describe('stowage keys list', () => {
  it('shows when each key was last used, after a request with it', async () => {
    t = await buildTestApp();
    const used = await t.resources.keys.create({ owner: 'alice', scope: 'read', label: 'reports dashboard' });
    const unused = await t.resources.keys.create({ owner: 'alice', scope: 'write' });
    await request(t.app).get('/v1/files').set('Authorization', `Bearer ${used.token}`).expect(200);
    // Last use is written in the background, after the answer.
    for (let i = 0; i < 100; i++) {
      const row = await t.db.selectFrom('api_keys').select('last_used_at').where('id', '=', used.id).executeTakeFirstOrThrow();
      if (row.last_used_at) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }

    const list = async (...args: string[]) => {
      const cli = runService(['keys', 'list', '--owner', 'alice', ...args], {
        cwd: t.dir,
        env: { DATABASE_PATH: t.config.databasePath, STORAGE_PATH: path.join(t.dir, 'files'), LOG_LEVEL: 'silent' },
      });
      expect(await cli.exited).toBe(0);
      return cli.lines.map((l) => l.msg ?? JSON.stringify(l));
    };
    const json = JSON.parse((await list('--json')).join('\n')) as { id: string; lastUsedAt: string | null; label: string | null }[];
    const byId = new Map(json.map((k) => [k.id, k]));
    expect(byId.get(used.id)?.lastUsedAt).toEqual(expect.stringMatching(/^\d{4}-\d\d-\d\dT/));
    expect(byId.get(unused.id)?.lastUsedAt).toBeNull();
    const text = await list();
    expect(text).toEqual(
      expect.arrayContaining([
        expect.stringMatching(new RegExp(`^${used.id}  alice  read  active  last used \\d{4}-.*"reports dashboard"$`)),
        expect.stringMatching(new RegExp(`^${unused.id}  alice  write  active  last used never$`)),
      ]),
    );
  });
});
