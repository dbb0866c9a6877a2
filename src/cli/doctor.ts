import { Command, InvalidArgumentError, Option } from 'commander';
import pino from 'pino';
import type { Config } from '../config';
import { DEFAULT_GRACE_MS, type DoctorScope } from '../doctor/context';
import { applyRemedies, type Remedies } from '../doctor/actions';
import { runChecks } from '../doctor/doctor';
import { formatJson, formatText } from '../doctor/format';
import { type DoctorReport, problemCount } from '../doctor/report';
import { parseDuration } from '../config/units';
import { createLogger } from '../http/logging';
import { doctorDeps, openResources } from '../resources';
import { confirmOnTerminal } from './confirm';
import { ProgressDisplay } from './progress';

interface DoctorOptions {
  owner?: string;
  since?: Date;
  grace: number;
  verify?: boolean;
  json?: boolean;
  fix?: boolean;
  delete?: boolean;
  yes?: boolean;
  pruneOrphans?: boolean;
  force?: boolean;
}

/** Exit statuses: a cron job or CI alerts on anything but 0. */
const CLEAN = 0;
const PROBLEMS = 1;
const REFUSED = 2;

function duration(value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined) throw new InvalidArgumentError('expected a duration such as 30m, 1h or 2d');
  return ms;
}

/** An ISO date/time, or a duration meaning "that long ago" (7d). */
function since(value: string): Date {
  const ago = parseDuration(value);
  if (ago !== undefined) return new Date(Date.now() - ago);
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw new InvalidArgumentError('expected a date (2026-11-01) or a duration ago (7d)');
  return date;
}

function refuse(message: string): void {
  console.error(`stowage doctor: ${message}`);
  process.exitCode = REFUSED;
}

/** Records --fix or --delete would act on: the problems that belong to a record. */
function recordProblems(report: DoctorReport): number {
  const s = report.summary;
  return s.missing + s.corrupt + s.stalePending;
}

async function doctor(config: Config, options: DoctorOptions): Promise<void> {
  if (options.fix && options.delete) return refuse('--fix and --delete are alternatives: choose one.');
  if (options.pruneOrphans && options.owner) return refuse('--prune-orphans cannot be combined with --owner: orphan blobs have no owner.');
  const onTerminal = Boolean(process.stdin.isTTY);
  if (options.delete && !options.yes && !onTerminal) {
    return refuse('--delete removes records for good: confirm with --yes when not running on a terminal. Nothing was changed.');
  }

  // Logs (every action) go to stderr so stdout carries only the report.
  const log = createLogger(config.logLevel, pino.destination({ fd: 2, sync: true }));
  const resources = await openResources(config, log);
  const { store } = resources;
  // The same stores as the server (the mirror's copies of deleted files are orphans to prune).
  const deps = doctorDeps(resources, config, log);
  const scope: DoctorScope = { owner: options.owner, since: options.since, graceMs: options.grace, verify: options.verify === true };
  try {
    const progress = !options.json && process.stderr.isTTY ? new ProgressDisplay(process.stderr) : undefined;
    let report: DoctorReport;
    try {
      report = await runChecks(deps, scope, progress?.listener);
    } finally {
      progress?.stop();
    }

    const actsOnRecords = (options.fix || options.delete) && recordProblems(report) > 0;
    // An unmounted volume makes every record look missing; don't fail or delete them all for it.
    if (actsOnRecords && !options.force && report.summary.recordsChecked > 0 && report.summary.missing === report.summary.recordsChecked) {
      process.stdout.write(options.json ? formatJson(report) : formatText(report));
      return refuse(
        `every checked record is missing from ${store.location}: is the storage mounted? Nothing was changed; pass --force to act anyway.`,
      );
    }
    let remedies: Remedies = { fix: options.fix === true, delete: options.delete === true, pruneOrphans: options.pruneOrphans === true };
    if (options.delete && !options.yes && recordProblems(report) > 0) {
      const confirmed = await confirmOnTerminal(
        `Delete ${recordProblems(report)} record(s) and their blobs for good? Type yes to continue: `,
      );
      if (!confirmed) {
        console.error('stowage doctor: not confirmed; no record was deleted.');
        remedies = { ...remedies, delete: false };
      }
    }
    await applyRemedies(deps, scope, report, remedies);
    process.stdout.write(options.json ? formatJson(report) : formatText(report));
    // Clean when nothing was found, or when every problem found was acted on (fixed, deleted, pruned).
    const handled = new Set(report.actions.map((a) => a.problem));
    const left = report.problems.filter((p) => !handled.has(p)).length + report.summary.actionErrors;
    process.exitCode = problemCount(report.summary) > 0 && left > 0 ? PROBLEMS : CLEAN;
  } finally {
    await resources.close();
  }
}

/** `stowage doctor`: compares the catalog with the stores, reports, and optionally repairs. */
export function doctorCommand(withConfig: (run: (config: Config) => Promise<void>) => Promise<void>): Command {
  return new Command('doctor')
    .summary('check the catalog against the storage, and repair it')
    .description(
      'compare the catalog with the storage: missing, corrupt and orphan blobs, stale pending uploads,\n' +
        'temp files and source copies left by processes that are no longer running, incomplete multipart uploads.\n' +
        'Exits 0 when clean or every problem found was fixed, 1 when problems are left, 2 when an action was refused.',
    )
    .option('--owner <owner>', "only this owner's records (orphan blobs are then not scanned)")
    .option('--since <when>', 'only records created (and blobs modified) since a date, or a duration ago (7d)', since)
    .addOption(
      new Option('--grace <duration>', 'blobs, pending uploads, scratch files and multipart uploads younger than this are in flight, not problems (unless their process is known to be gone)')
        .default(DEFAULT_GRACE_MS, '1h')
        .argParser(duration),
    )
    .option('--verify', "also stream every blob through sha256 and compare it with the record's")
    .option('--json', 'print the report as one JSON document (no progress bar)')
    .option(
      '--fix',
      `mark missing and corrupt records failed, with a message users see in the API; restore restorable ones from the mirror; queue mirror copies of unmirrored ones; remove temp files and source copies left by processes that are no longer running; abort incomplete multipart uploads`,
    )
    .option('--delete', 'delete missing and corrupt records and their blobs (asks for "yes"; see --yes)')
    .option('--yes', 'confirm --delete without asking (required when not on a terminal)')
    .option('--prune-orphans', 'delete orphan blobs older than the grace period')
    .option('--force', 'act even when every checked record is missing (normally a sign the storage is not mounted)')
    .action((options: DoctorOptions) => withConfig((config) => doctor(config, options)));
}
