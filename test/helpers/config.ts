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
