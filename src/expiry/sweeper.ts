import type { Logger } from 'pino';
import type { StoreTotals } from '../catalog/files';
import type { CatalogDb } from '../catalog/database';
import { withSweepLock } from '../catalog/sweep-lock';
import { isDatabaseUnavailable } from '../catalog/unavailable';
import type { ExpiredHook, Files } from '../files/files';
import { every, type Periodic } from '../housekeeping';

const BATCH = 500;

export interface ExpirySweepDeps {
  files: Files;
  db: CatalogDb;
  log: Logger;
  /** This Fly Machine (volumes): it sweeps only its own files, under a lock of its own. */
  machineId?: string;
  /** Runs in the transaction that makes files `expired` (where a `file.expired` event is recorded). */
  onExpired?: ExpiredHook;
  /** Hears the stored bytes and files per store after each sweep (the storage gauges). */
  onTotals?: (totals: StoreTotals) => void;
  /** False: only refresh the totals (a web process whose workers run elsewhere). */
  removeFiles?: boolean;
}

export interface ExpirySweep {
  /** False when another instance was sweeping (it holds the lock); nothing was done here. */
  swept: boolean;
  /** Ready files that turned `expired`. */
  expired: number;
  /** Expired files whose bytes and records are gone. */
  removed: number;
  /** Expired files a step failed for (logged); the next sweep tries them again. */
  failed: number;
}

/**
 * The expiry sweep: ready files past their `expiresAt` become `expired` (downloads answer 410,
 * lists hide them), then each expired file's blob, its mirror copy and its record go
 * (`Files.removeExpired`). Each step is safe to repeat: after a crash, the next sweep finds the
 * `expired` records left and finishes them. One sweep at a time across instances (per Fly
 * Machine), then the storage totals are refreshed.
 */
export async function sweepExpired(deps: ExpirySweepDeps, now = new Date()): Promise<ExpirySweep> {
  const result = deps.removeFiles === false ? undefined : await withSweepLock(deps.db, `stowage:expiry-sweep:${deps.machineId ?? ''}`, () => expireAndRemove(deps, now));
  if (deps.onTotals) deps.onTotals(await deps.files.storeTotals());
  return result ?? { swept: false, expired: 0, removed: 0, failed: 0 };
}

async function expireAndRemove({ files, log, onExpired }: ExpirySweepDeps, now: Date): Promise<ExpirySweep> {
  let expired = 0;
  for (let batch = BATCH; batch === BATCH; ) {
    batch = (await files.expireDue(now, BATCH, onExpired)).length;
    expired += batch;
  }
  let removed = 0;
  let failed = 0;
  // Batches until one fails somewhere: a store that can't delete now is left for the next sweep.
  for (let records = await files.expiredRecords(BATCH); records.length > 0 && failed === 0; records = await files.expiredRecords(BATCH)) {
    for (const record of records) {
      try {
        await files.removeExpired(record, log);
        removed++;
      } catch (err) {
        failed++;
        log.warn({ err, fileId: record.id, key: record.key, store: record.store }, 'could not remove an expired file; the next sweep tries again');
      }
    }
    if (records.length < BATCH) break;
  }
  if (expired || removed || failed) log.info({ event: 'expiry.sweep', expired, removed, failed }, 'expiry sweep');
  return { swept: true, expired, removed, failed };
}

/** Sweeps now and every `intervalMs` (SWEEP_INTERVAL) in the background; `stop` waits for a sweep in progress. */
export function startExpirySweeper(deps: ExpirySweepDeps & { intervalMs: number }): Periodic {
  const run = () =>
    sweepExpired(deps).catch((err: unknown) => {
      // An outage the catalog comes back from: the next sweep does what this one could not.
      if (!isDatabaseUnavailable(err)) throw err;
      deps.log.warn({ err }, 'the database is unavailable: the expiry sweep waits for its next run');
    });
  return every(deps.intervalMs, run, deps.log, 'expiry sweep');
}
