#!/usr/bin/env node
import { Command } from 'commander';
import { migrateToLatest } from '../catalog/migrations';
import { openDatabase } from '../catalog/database';
import { loadConfig, type Config } from '../config';
import { ConfigError } from '../errors';
import { createLogger } from '../http/logging';
import { doctorCommand } from './doctor';
import { serve } from './serve';

/** Config problems are the operator's to fix: print them plainly, one per line, and exit 1. */
function fail(err: unknown): never {
  if (err instanceof ConfigError) {
    console.error(`stowage: cannot start\n${err.problems.map((p) => `  ${p}`).join('\n')}`);
  } else {
    console.error('stowage: failed:', err);
  }
  process.exit(1);
}

async function withConfig(run: (config: Config) => Promise<void>): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    fail(err);
  }
  await run(config).catch(fail);
}

const program = new Command('stowage').description('Files and reports that are never lost.');

program
  .command('serve', { isDefault: true })
  .description('start the HTTP server (PORT, HOST; see .env.example)')
  .action(() => withConfig((config) => serve(config, createLogger(config.logLevel))));

program
  .command('migrate')
  .description('apply database schema migrations and exit (for a release phase)')
  .action(() =>
    withConfig(async (config) => {
      const db = openDatabase(config.databasePath);
      try {
        const { applied } = await migrateToLatest(db);
        console.log(applied.length ? `applied: ${applied.join(', ')}` : 'schema is up to date');
      } finally {
        await db.destroy();
      }
    }),
  );

program.addCommand(doctorCommand(withConfig));

program.parseAsync().catch(fail);
