/**
 * TRUST_PROXY: behind Heroku's or Fly's router (one hop) the client's address comes from
 * X-Forwarded-For and https from X-Forwarded-Proto; anywhere else a client can't claim either.
 * Real HTTP through the real app.
 */
import request from 'supertest';
import { loadConfig } from '../../src/config';
import { HSTS } from '../../src/http/helmet';
import { buildTestApp, type TestApp, TEST_SECRET_KEY } from '../helpers/app';
import { configProblems, HEROKU_DYNO } from '../helpers/config';

const cwd = '/srv/app';

describe('TRUST_PROXY configuration', () => {
  it('defaults to one hop on Heroku and Fly, none elsewhere', () => {
    expect(loadConfig({}, cwd).trustProxy).toBe(false);
    expect(loadConfig({ HOST: '0.0.0.0', SECRET_KEY: TEST_SECRET_KEY }, cwd).trustProxy).toBe(false);
    expect(loadConfig({ ...HEROKU_DYNO, SECRET_KEY: TEST_SECRET_KEY }, cwd).trustProxy).toBe(1);
    expect(loadConfig({ FLY_APP_NAME: 'stowage', SECRET_KEY: TEST_SECRET_KEY }, cwd).trustProxy).toBe(1);
    // Set, it wins over the platform's default.
    expect(loadConfig({ ...HEROKU_DYNO, SECRET_KEY: TEST_SECRET_KEY, TRUST_PROXY: 'false' }, cwd).trustProxy).toBe(false);
  });

  it('takes a number of hops, true/false, or addresses and subnets', () => {
    const parsed = (v: string) => loadConfig({ TRUST_PROXY: v }, cwd).trustProxy;
    expect(parsed('2')).toBe(2);
    expect(parsed('0')).toBe(false);
    expect(parsed('TRUE')).toBe(true);
    expect(parsed('loopback, 10.0.0.0/8,fd00::/8 ,192.0.2.1')).toEqual(['loopback', '10.0.0.0/8', 'fd00::/8', '192.0.2.1']);
    for (const bad of ['yes', '10.0.0.0/33', 'proxy.internal', '-1']) {
      expect(configProblems({ TRUST_PROXY: bad }, cwd)).toEqual([expect.stringMatching(/^TRUST_PROXY: .* must be the number of proxies in front of stowage/)]);
    }
  });
});

describe('behind a proxy', () => {
  let t: TestApp;
  let warnings: jest.SpyInstance[];
  beforeEach(() => {
    warnings = [jest.spyOn(console, 'warn'), jest.spyOn(console, 'error')];
  });
  afterEach(async () => {
    // Nothing writes to the console: what the limiter finds goes to the log.
    for (const spy of warnings) {
      expect(spy).not.toHaveBeenCalled();
      spy.mockRestore();
    }
    await t?.close();
  });

  const failedAttempt = (forwardedFor?: string) => {
    const req = request(t.app).get('/v1/files').set('Authorization', 'Bearer stw_not-a-key');
    return forwardedFor ? req.set('X-Forwarded-For', forwardedFor) : req;
  };
  const limiterWarnings = () => t.logs.lines.filter((l) => l.event === 'auth.rate_limit_config');

  it('trusted (TRUST_PROXY=1), counts failed attempts per client address from X-Forwarded-For', async () => {
    t = await buildTestApp({ TRUST_PROXY: '1', AUTH_FAILURES_PER_15M: '2' });
    // The router appends the address it saw: a client's own X-Forwarded-For entry changes nothing.
    expect((await failedAttempt('198.51.100.1, 203.0.113.7')).status).toBe(401);
    expect((await failedAttempt('203.0.113.7')).status).toBe(401);
    const limited = await failedAttempt('10.9.9.9, 203.0.113.7');
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe('too_many_attempts');
    // Another client behind the same router is not limited.
    expect((await failedAttempt('203.0.113.8')).status).toBe(401);
    expect(limiterWarnings()).toEqual([]);
  });

  it('not trusted (the default off Heroku and Fly), ignores X-Forwarded-For: changing it does not escape the limit', async () => {
    t = await buildTestApp({ AUTH_FAILURES_PER_15M: '2' });
    expect((await failedAttempt('203.0.113.1')).status).toBe(401);
    expect((await failedAttempt('203.0.113.2')).status).toBe(401);
    expect((await failedAttempt('203.0.113.3')).status).toBe(429);
    expect((await failedAttempt()).status).toBe(429);
    // The limiter's check says, once, in the log, what to set if there is a proxy in front.
    expect(limiterWarnings()).toEqual([expect.objectContaining({ code: 'forwarded_for_untrusted', msg: expect.stringContaining('TRUST_PROXY') })]);
  });

  it('TRUST_PROXY=true is accepted but logged as spoofable', async () => {
    t = await buildTestApp({ TRUST_PROXY: 'true' });
    expect((await failedAttempt('203.0.113.1')).status).toBe(401);
    expect(limiterWarnings()).toEqual([expect.objectContaining({ code: 'trust_proxy_permissive' })]);
  });

  it('sends HSTS over https as a trusted proxy reports it (X-Forwarded-Proto), not over plain http', async () => {
    t = await buildTestApp({ TRUST_PROXY: '1' });
    const viaRouter = await request(t.app).get('/healthz').set('X-Forwarded-Proto', 'https').set('X-Forwarded-For', '203.0.113.7');
    expect(viaRouter.status).toBe(200);
    expect(viaRouter.headers['strict-transport-security']).toBe(HSTS);
    const plain = await request(t.app).get('/healthz');
    expect(plain.headers['strict-transport-security']).toBeUndefined();
    // On API answers too, errors included.
    const refused = await request(t.app).get('/v1/files').set('X-Forwarded-Proto', 'https');
    expect(refused.status).toBe(401);
    expect(refused.headers['strict-transport-security']).toBe(HSTS);
  });

  it('ignores X-Forwarded-Proto from a client when no proxy is trusted', async () => {
    t = await buildTestApp();
    const spoofed = await request(t.app).get('/healthz').set('X-Forwarded-Proto', 'https');
    expect(spoofed.status).toBe(200);
    expect(spoofed.headers['strict-transport-security']).toBeUndefined();
  });
});
