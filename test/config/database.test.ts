import { pgClientConfig } from '../../src/catalog/postgres';
import { loadConfig } from '../../src/config';
import type { PostgresSettings } from '../../src/catalog/database-settings';
import { describeDatabase } from '../../src/catalog/database-settings';
import { configProblems } from '../helpers/config';

const cwd = '/srv/app';

function postgresSettings(env: Record<string, string>): PostgresSettings {
  const { database } = loadConfig(env, cwd);
  if (database.kind !== 'postgres') throw new Error('expected PostgreSQL');
  return database;
}

const problems = (env: Record<string, string>) => configProblems(env, cwd);

describe('catalog database configuration', () => {
  it('is the embedded SQLite file unless DATABASE_URL is set', () => {
    expect(loadConfig({ STORAGE: 'volume' }, cwd).database).toEqual({ kind: 'sqlite', path: '/srv/app/data/stowage.db' });
  });

  it('uses PostgreSQL from DATABASE_URL with a configurable pool, and never logs the password', () => {
    const settings = postgresSettings({ DATABASE_URL: 'postgres://app:s3cret@db.internal:5433/stowage', DATABASE_POOL_SIZE: '25' });
    expect(settings).toMatchObject({ kind: 'postgres', poolSize: 25, sslMode: undefined });
    expect(describeDatabase(loadConfig({ DATABASE_URL: settings.url }, cwd).database)).toBe('postgres://app:***@db.internal:5433/stowage');
    expect(pgClientConfig(settings)).toMatchObject({ host: 'db.internal', port: 5433, user: 'app', password: 's3cret', database: 'stowage', ssl: false });
  });

  it('sslmode=require encrypts without verifying the certificate (Heroku self-signed); verify-full verifies it', () => {
    const url = 'postgres://u:p@db.example.com/d';
    expect(pgClientConfig(postgresSettings({ DATABASE_URL: `${url}?sslmode=require` })).ssl).toEqual({ rejectUnauthorized: false });
    expect(pgClientConfig(postgresSettings({ DATABASE_URL: `${url}?sslmode=no-verify` })).ssl).toEqual({ rejectUnauthorized: false });
    const full = pgClientConfig(postgresSettings({ DATABASE_URL: `${url}?sslmode=verify-full` })).ssl;
    expect(full).toBeTruthy();
    expect(full).not.toMatchObject({ rejectUnauthorized: false });
    expect(pgClientConfig(postgresSettings({ DATABASE_URL: `${url}?sslmode=disable` })).ssl).toBe(false);
  });

  it('takes PGSSLMODE when the URL (set by the platform) has no sslmode; the URL wins otherwise', () => {
    const url = 'postgres://u:p@db.example.com/d';
    expect(pgClientConfig(postgresSettings({ DATABASE_URL: url, PGSSLMODE: 'require' })).ssl).toEqual({ rejectUnauthorized: false });
    expect(pgClientConfig(postgresSettings({ DATABASE_URL: `${url}?sslmode=disable`, PGSSLMODE: 'require' })).ssl).toBe(false);
  });

  it('refuses a URL that is not postgres://, an unknown sslmode, and a pool of 0', () => {
    expect(problems({ DATABASE_URL: 'mysql://db/x' })).toEqual([expect.stringMatching(/^DATABASE_URL: "mysql:\/\/db\/x" must be a postgres:\/\/ URL/)]);
    expect(problems({ DATABASE_URL: 'postgres://db/x?sslmode=maybe' })).toEqual([expect.stringContaining('sslmode must be one of disable, prefer, require')]);
    expect(problems({ DATABASE_POOL_SIZE: '0' })).toEqual(['DATABASE_POOL_SIZE: "0" must be at least 1 connections']);
  });
});
