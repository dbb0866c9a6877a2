import { loadConfig } from '../../src/config';
import { configProblems } from '../helpers/config';

const cwd = '/srv/app';

describe('how long an unfinished resumable upload is kept', () => {
  it('is a day unless TUS_EXPIRY says otherwise', () => {
    expect(loadConfig({}, cwd).tus.expiryMs).toBe(86_400_000);
    expect(loadConfig({ TUS_EXPIRY: '3h' }, cwd).tus.expiryMs).toBe(3 * 3_600_000);
  });

  it('refuses anything but a duration of at least a second, in one line naming the variable', () => {
    expect(configProblems({ TUS_EXPIRY: 'forever' }, cwd)).toEqual(['TUS_EXPIRY: "forever" must be a duration of at least 1s (e.g. 24h)']);
  });
});
