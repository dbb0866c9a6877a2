#!/usr/bin/env node
import { inspect } from 'node:util';
import { Command, InvalidArgumentError, Option } from 'commander';
import { databaseProblem } from '../catalog/connection-errors';
import { redactUrls } from '../config/redact';
import { packageVersion } from '../package-version';
import { migrateToLatest } from '../catalog/migrations';
import { openDatabase } from '../catalog/database';
import { loadConfig, type Config } from '../config';
import { ConfigError } from '../errors';
import { createLogger } from '../http/logging';
import { TARGET_DRIVERS, type TargetDriver } from '../migrate-storage/target';
import { runMigrateStorage } from './migrate-storage';
import { doctorCommand } from './doctor';
import { keysCommand } from './keys';
import { linksCommand } from './links';
import { quotasCommand, usageCommand } from './quotas';
import { webhooksCommand } from './webhooks';
import { serve } from './serve';
import { runWorker } from './worker';

/** Config problems are the operator's to fix: print them plainly, one per line, and exit 1. */
function fail(err: unknown): never {
  if (err instanceof ConfigError) {
    console.error(`stowage: cannot start\n${err.problems.map((p) => `  ${p}`).join('\n')}`);
  } else {
    // A bug, not a setting: the whole error helps, but never with a password in it.
    console.error(`stowage: failed: ${redactUrls(inspect(err))}`);
  }
  process.exit(1);
}

/** What an operator can fix, said in one line naming the variable; anything else as it is. */
function startupProblem(err: unknown, config: Config): unknown {
  if (err instanceof ConfigError) return err;
  const database = databaseProblem(err, config.database);
  if (database) return new ConfigError([database], { cause: err });
  if ((err as { code?: unknown })?.code === 'EADDRINUSE') {
    return new ConfigError([`PORT: ${config.port} is already in use on ${config.host} (stop what is listening there, or set PORT to a free port)`], { cause: err });
  }
  return err;
}

async function withConfig(run: (config: Config) => Promise<void>): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    fail(err);
  }
  await run(config).catch((err: unknown) => fail(startupProblem(err, config)));
}

const program = new Command('stowage').description('Files and reports that are never lost.').version(packageVersion(), '-v, --version', 'print the version');

program
  .command('serve', { isDefault: true })
  .description('start the HTTP server (PORT, HOST; see .env.example)')
  .action(() => withConfig((config) => serve(config, createLogger(config.logLevel))));

program
  .command('worker')
  .description('run queued tasks (reports...) without serving HTTP; WORKER_CONCURRENCY at a time')
  .action(() => withConfig((config) => runWorker(config, createLogger(config.logLevel))));

program
  .command('migrate')
  .description('apply database schema migrations and exit (for a release phase)')
  .action(() =>
    withConfig(async (config) => {
      const db = openDatabase(config.database);
      try {
        const { applied } = await migrateToLatest(db);
        console.log(applied.length ? `applied: ${applied.join(', ')}` : 'schema is up to date');
      } finally {
        await db.destroy();
      }
    }),
  );

program
  .command('migrate-storage')
  .description('copy every blob to another store (verifying sha256), then point its record there; safe to re-run')
  .addOption(new Option('--to <store>', 'the store to move blobs into (configured by S3_* or STORAGE_PATH)').choices(TARGET_DRIVERS).makeOptionMandatory())
  .option('--concurrency <n>', 'blobs copied at once', (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > 64) throw new InvalidArgumentError('must be a whole number from 1 to 64');
    return n;
  }, 4)
  .option('--dry-run', 'count what would be copied; change nothing', false)
  .option('--delete-source', 'delete each source blob once its copy is verified and in use', false)
  .action((flags: { to: TargetDriver; concurrency: number; dryRun: boolean; deleteSource: boolean }) =>
    withConfig((config) => {
      // On a terminal the progress bar shows progress; keep the log to problems there.
      const level = process.stderr.isTTY && config.logLevel === 'info' ? 'warn' : config.logLevel;
      return runMigrateStorage(config, createLogger(level), flags);
    }),
  );
program.addCommand(doctorCommand(withConfig));
program.addCommand(keysCommand(withConfig));
program.addCommand(linksCommand(withConfig));
program.addCommand(quotasCommand(withConfig));
program.addCommand(usageCommand(withConfig));
program.addCommand(webhooksCommand(withConfig));

program.parseAsync().catch(fail);
