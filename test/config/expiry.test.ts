import { loadConfig } from '../../src/config';
import { configProblems } from '../helpers/config';

const cwd = '/srv/app';

describe('REPORT_TTL and SWEEP_INTERVAL', () => {
  it('default to 30 days and one minute', () => {
    expect(loadConfig({}, cwd).expiry).toEqual({ reportTtlMs: 30 * 86_400_000, sweepIntervalMs: 60_000 });
  });

  it('are read from their variables; never (or 0) keeps report outputs', () => {
    expect(loadConfig({ REPORT_TTL: '12h', SWEEP_INTERVAL: '5s' }, cwd).expiry).toEqual({ reportTtlMs: 12 * 3_600_000, sweepIntervalMs: 5000 });
    expect(loadConfig({ REPORT_TTL: 'never' }, cwd).expiry.reportTtlMs).toBeNull();
    expect(loadConfig({ REPORT_TTL: '0' }, cwd).expiry.reportTtlMs).toBeNull();
  });

  it('refuse what is not a duration, one line per variable', () => {
    expect(configProblems({ REPORT_TTL: 'a month', SWEEP_INTERVAL: '10ms' }, cwd)).toEqual([
      'REPORT_TTL: "a month" must be a duration from 1s to 36500d (e.g. 30d, 12h), or never (0) to keep report outputs until deleted',
      'SWEEP_INTERVAL: "10ms" must be a duration of at least 1s (e.g. 1m)',
    ]);
  });

  it('need two PostgreSQL connections per process: the sweep holds one for its lock', () => {
    expect(configProblems({ DATABASE_URL: 'postgres://db.internal/stowage', DATABASE_POOL_SIZE: '1' }, cwd)).toEqual([
      'DATABASE_POOL_SIZE: "1" must be at least 2 connections (the expiry sweep holds one for its lock while it works on another)',
    ]);
  });
});
