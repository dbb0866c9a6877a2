import { loadConfig } from '../../src/config';
import { configProblems } from '../helpers/config';

const cwd = '/srv/app';
const problems = (env: Record<string, string>) => configProblems(env, cwd);
const SECRET = `whsec_${Buffer.alloc(32, 'k').toString('base64')}`;

describe('webhooks', () => {
  it('are off by default, with a 5 s timeout and a day before a delivery is given up', () => {
    expect(loadConfig({}, cwd).webhooks).toEqual({ endpoint: undefined, timeoutMs: 5000, retryDelayMs: 10_000, giveUpMs: 86_400_000 });
  });

  it('take WEBHOOK_URL with its whsec_ secret, and the durations', () => {
    const { webhooks } = loadConfig({ WEBHOOK_URL: 'https://app.example/hooks', WEBHOOK_SECRET: SECRET, WEBHOOK_TIMEOUT: '2s', WEBHOOK_RETRY_DELAY: '1m', WEBHOOK_GIVE_UP: '3d' }, cwd);
    expect(webhooks).toEqual({ endpoint: { url: 'https://app.example/hooks', secret: SECRET }, timeoutMs: 2000, retryDelayMs: 60_000, giveUpMs: 3 * 86_400_000 });
  });

  it('say what is wrong, one line per variable, never echoing the secret', () => {
    expect(problems({ WEBHOOK_URL: 'ftp://app.example/', WEBHOOK_SECRET: 'whsec_c2hvcnQ=', WEBHOOK_TIMEOUT: 'soon', WEBHOOK_GIVE_UP: '0' })).toEqual([
      'WEBHOOK_URL: "ftp://app.example/" must be an http:// or https:// URL',
      'WEBHOOK_SECRET: must be whsec_ followed by base64 of 24 to 64 random bytes (e.g. whsec_ and the output of openssl rand -base64 32)',
      'WEBHOOK_TIMEOUT: "soon" must be a duration of at least 100ms (e.g. 5s)',
      'WEBHOOK_GIVE_UP: "0" must be a duration of at least 1s (e.g. 24h)',
    ]);
    expect(problems({ WEBHOOK_URL: 'https://me:pw@app.example/hooks', WEBHOOK_SECRET: SECRET })).toEqual([
      'WEBHOOK_URL: "https://me:***@app.example/hooks" must not carry a user name or password (deliveries are signed instead)',
    ]);
    expect(problems({ WEBHOOK_URL: 'https://app.example/hooks' })).toEqual(['WEBHOOK_SECRET: must be set with WEBHOOK_URL (the key deliveries are signed with, whsec_...)']);
    expect(problems({ WEBHOOK_SECRET: SECRET })).toEqual(['WEBHOOK_URL: must be set with WEBHOOK_SECRET (the endpoint that receives every event)']);
  });
});
