import { loadConfig } from '../../src/config';
import { configProblems, HEROKU_DYNO } from '../helpers/config';

const cwd = '/srv/app';

describe('timeouts and upload caps', () => {
  it('default to 30 s headers, 60 s bodies other than uploads, 30 s of body silence, 8 uploads per client and 64 in all', () => {
    expect(loadConfig({}, cwd).http).toEqual({
      headersTimeoutMs: 30_000,
      requestTimeoutMs: 60_000,
      bodyIdleTimeoutMs: 30_000,
      keepAliveTimeoutMs: 5_000,
      uploadSlots: { perClient: 8, total: 64 },
    });
  });

  it('keep idle connections 95 s on Heroku and Fly, longer than their proxies do, unless KEEP_ALIVE_TIMEOUT says otherwise', () => {
    const SECRET_KEY = 'a-secret-key-of-at-least-32-characters!';
    expect(loadConfig({ ...HEROKU_DYNO, SECRET_KEY }, cwd).http.keepAliveTimeoutMs).toBe(95_000);
    expect(loadConfig({ FLY_APP_NAME: 'stowage', SECRET_KEY }, cwd).http.keepAliveTimeoutMs).toBe(95_000);
    expect(loadConfig({ ...HEROKU_DYNO, SECRET_KEY, KEEP_ALIVE_TIMEOUT: '120s' }, cwd).http.keepAliveTimeoutMs).toBe(120_000);
  });

  it('take durations and counts, and a per-client cap never above the total', () => {
    const http = loadConfig({ BODY_IDLE_TIMEOUT: '1s', REQUEST_TIMEOUT: '2m', HEADERS_TIMEOUT: '500ms', UPLOADS_PER_CLIENT: '100', UPLOADS_MAX: '10' }, cwd).http;
    expect(http).toMatchObject({ bodyIdleTimeoutMs: 1000, requestTimeoutMs: 120_000, headersTimeoutMs: 500, uploadSlots: { perClient: 10, total: 10 } });
  });

  it('refuse nonsense with one line per variable', () => {
    expect(configProblems({ BODY_IDLE_TIMEOUT: '0', UPLOADS_MAX: '0', HEADERS_TIMEOUT: 'soon' })).toEqual([
      'HEADERS_TIMEOUT: "soon" must be a duration of at least 100ms (e.g. 30s)',
      'BODY_IDLE_TIMEOUT: "0" must be a duration of at least 100ms (e.g. 30s)',
      'UPLOADS_MAX: "0" must be at least 1 uploads',
    ]);
  });
});
