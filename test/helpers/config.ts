import { loadConfig } from '../../src/config';
import { ConfigError } from '../../src/errors';

/** The lines startup would print for `env` (none when the configuration is valid). */
export function configProblems(env: Record<string, string>, cwd = '/srv/app'): string[] {
  try {
    loadConfig(env, cwd);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

/** What a web dyno sees with the docs' Heroku recipe: Heroku Postgres and a bucket (no secret). */
export const HEROKU_DYNO = {
  DYNO: 'web.1',
  DATABASE_URL: 'postgres://u:p@ec2-1-2-3-4.compute-1.amazonaws.com:5432/d8f',
  PGSSLMODE: 'require',
  STORAGE: 's3',
  S3_BUCKET: 'my-stowage',
};
