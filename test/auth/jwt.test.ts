import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK, type KeyLike, SignJWT } from 'jose';
import request from 'supertest';
import { buildTestApp, type TestApp } from '../helpers/app';

/** The host app's JWTs, signed with jose as a host app would, against the real app. */

const SECRET = 'the-host-apps-hs256-secret-0123456789abcdef';
let t: TestApp;
afterEach(() => t?.close());

const now = () => Math.floor(Date.now() / 1000);

function hs256(claims: Record<string, unknown>, options: { exp?: number | null; secret?: string } = {}) {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt();
  if (options.exp !== null) jwt.setExpirationTime(options.exp ?? now() + 300);
  return jwt.sign(new TextEncoder().encode(options.secret ?? SECRET));
}

const bearer = (token: string) => request.agent(t.app).set('Authorization', `Bearer ${token}`);

describe('HS256 (AUTH_JWT_SECRET)', () => {
  beforeEach(async () => {
    t = await buildTestApp({ AUTH_JWT_SECRET: SECRET, AUTH_JWT_ISSUER: 'https://app.example', AUTH_JWT_AUDIENCE: 'stowage' });
  });
  const valid = (claims: Record<string, unknown> = {}, options?: Parameters<typeof hs256>[1]) =>
    hs256({ sub: 'alice', iss: 'https://app.example', aud: 'stowage', ...claims }, options);

  it("acts as the sub claim's owner: uploads, lists and downloads alice's files", async () => {
    const token = await valid();
    const up = await bearer(token).post('/v1/files').attach('file', Buffer.from('from the browser'), 'b.txt');
    expect(up.status).toBe(201);
    expect((await t.http('alice').get('/v1/files')).body.files.map((f: { name: string }) => f.name)).toEqual(['b.txt']);
    expect((await bearer(token).get(up.body.files[0].links.content)).text).toBe('from the browser');
    await t.logs.waitFor((l) => l.auth === 'jwt:alice');
    expect(JSON.stringify(t.logs.lines)).not.toContain(token);
  });

  it('refuses tokens that are expired, unsigned by the secret, for another issuer or audience, or without exp', async () => {
    const cases: [string, Promise<string>, string][] = [
      ['expired past the leeway', valid({}, { exp: now() - 60 }), 'token_expired'],
      ['wrong secret', valid({}, { secret: 'another-secret-another-secret-0123456789' }), 'token_invalid'],
      ['other issuer', valid({ iss: 'https://evil.example' }), 'token_invalid'],
      ['other audience', valid({ aud: 'someone-else' }), 'token_invalid'],
      ['no exp', valid({}, { exp: null }), 'token_invalid'],
      ['sub not an owner name', valid({ sub: '../../etc' }), 'token_invalid'],
    ];
    for (const [why, token, code] of cases) {
      const res = await bearer(await token).get('/v1/files');
      expect({ why, status: res.status, code: res.body.error.code }).toEqual({ why, status: 401, code });
    }
    // Clocks may disagree by 30 s.
    expect((await bearer(await valid({}, { exp: now() - 10 })).get('/v1/files')).status).toBe(200);
  });

  it('limits a token whose scope claim grants only read, and never lets a JWT act for another owner', async () => {
    const reader = await valid({ scope: 'openid read' });
    expect((await bearer(reader).get('/v1/files')).status).toBe(200);
    const up = await bearer(reader).post('/v1/files').attach('file', Buffer.from('x'), 'x.txt');
    expect(up.body.error.code).toBe('insufficient_scope');
    const other = await bearer(await valid({ scope: 'read write' })).get('/v1/files').set('X-Owner', 'bob');
    expect(other.body.error.code).toBe('owner_not_allowed');
  });

  it('takes the owner from AUTH_JWT_OWNER_CLAIM when set', async () => {
    await t.close();
    t = await buildTestApp({ AUTH_JWT_SECRET: SECRET, AUTH_JWT_OWNER_CLAIM: 'org' });
    const token = await hs256({ sub: 'user-17', org: 'acme' });
    expect((await bearer(token).post('/v1/files').attach('file', Buffer.from('x'), 'x.txt')).status).toBe(201);
    expect((await t.withToken(await t.key('acme', 'read')).get('/v1/files')).body.files).toHaveLength(1);
  });
});

describe('JWKS (AUTH_JWKS_URL)', () => {
  let jwks: http.Server;
  let published: JWK[] = [];
  let fetches = 0;

  async function keyPair(kid: string, alg: 'RS256' | 'ES256' | 'EdDSA') {
    const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
    return { kid, alg, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg } };
  }
  const sign = (key: { kid: string; alg: string; privateKey: KeyLike }, sub = 'alice') =>
    new SignJWT({ sub }).setProtectedHeader({ alg: key.alg, kid: key.kid }).setExpirationTime(now() + 300).sign(key.privateKey);

  beforeEach(async () => {
    fetches = 0;
    jwks = http.createServer((_req, res) => {
      fetches++;
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ keys: published }));
    });
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    const { port } = jwks.address() as AddressInfo;
    t = await buildTestApp({ AUTH_JWKS_URL: `http://127.0.0.1:${port}/.well-known/jwks.json`, AUTH_JWKS_REFETCH_MS: '1' });
  });
  afterEach(() => new Promise<void>((resolve) => jwks.close(() => resolve())));

  it('verifies RS256, ES256 and EdDSA tokens by kid, and follows a key rotation mid-test', async () => {
    const first = await keyPair('2026-11', 'RS256');
    const ec = await keyPair('ec-1', 'ES256');
    const ed = await keyPair('ed-1', 'EdDSA');
    published = [first.jwk, ec.jwk, ed.jwk];
    for (const key of [first, ec, ed]) expect((await bearer(await sign(key)).get('/v1/files')).status).toBe(200);
    expect(fetches).toBe(1);

    // The host app rotates: publishes a new key, signs with it, retires the old one.
    const next = await keyPair('2026-12', 'RS256');
    published = [next.jwk];
    expect((await bearer(await sign(next)).get('/v1/files')).status).toBe(200);
    expect(fetches).toBe(2);
    const retired = await bearer(await sign(first)).get('/v1/files');
    expect(retired.status).toBe(401);
    expect(retired.body.error.code).toBe('token_invalid');
  });

  it('refuses a token signed by a key the JWKS does not hold, and an HS256 token forged with a public key', async () => {
    const real = await keyPair('real', 'ES256');
    published = [real.jwk];
    const stranger = await keyPair('real', 'ES256');
    expect((await bearer(await sign(stranger)).get('/v1/files')).body.error.code).toBe('token_invalid');
    const forged = await hs256({ sub: 'alice' }, { secret: JSON.stringify(real.jwk) });
    expect((await bearer(forged).get('/v1/files')).body.error.code).toBe('token_invalid');
  });

  it('answers 503 auth_unavailable, not 401, while the JWKS cannot be fetched', async () => {
    const key = await keyPair('k', 'ES256');
    published = [key.jwk];
    await new Promise<void>((resolve) => jwks.close(() => resolve()));
    jwks.closeAllConnections();
    const res = await bearer(await sign(key)).get('/v1/files');
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('auth_unavailable');
    jwks.listen(0, '127.0.0.1');
  });
});
