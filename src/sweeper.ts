import type { Logger } from 'pino';
import type { Instances } from './catalog/instances';
import { isDatabaseUnavailable } from './catalog/unavailable';
import { DEFAULT_GRACE_MS } from './doctor/context';
import type { Files } from './files/files';
import { every, type Periodic } from './housekeeping';
import { type ScratchPlaces, sweepLeftoverFiles } from './leftovers';
import type { StoreSet } from './storage/store-set';
import { sweepAbandonedUploads } from './uploads/incomplete-multipart';
import { sweepInterruptedUploads } from './uploads/interrupted';
import { sweepExpiredUploads } from './uploads/pending-sweeper';

export interface SweeperDeps {
  files: Files;
  /** Every store this process reaches: incomplete multipart uploads are swept in each that has them. */
  stores: StoreSet;
  instances: Instances;
  places: ScratchPlaces;
  log: Logger;
  /** Resumable uploads: the bytes of those past TUS_EXPIRY go with their records. */
  tus?: { sweep(now: Date): Promise<number> };
  /** What a silent or unnamed writer's leftovers must have been untouched for (the doctor's default grace). */
  graceMs?: number;
}

export interface SweepCounts {
  undiscarded: number;
  expiredUploads: number;
  expiredTusUploads: number;
  interruptedUploads: number;
  incompleteUploads: number;
  leftoverFiles: number;
  instancesPruned: number;
}

/**
 * One pass over what failed or dead work leaves behind: uploads this process could not discard
 * while the catalog was unreachable, direct and resumable uploads past their expiry, uploads whose process
 * died (record and blob), then the incomplete multipart uploads nothing will complete (those whose
 * records just went among them), temp files and source copies of dead processes, then the rows of
 * those processes. Each step runs even when another failed (logged; the next pass tries again),
 * unless the database is unreachable.
 */
export async function sweepLeftovers(deps: SweeperDeps, now = new Date()): Promise<SweepCounts> {
  const graceMs = deps.graceMs ?? DEFAULT_GRACE_MS;
  // Every step needs the catalog: once it is found unreachable, the rest wait for the next pass.
  let unreachable = false;
  const step = async (what: string, run: () => Promise<number>) => {
    if (unreachable) return 0;
    return run().catch((err: unknown) => {
      unreachable = isDatabaseUnavailable(err);
      if (unreachable) deps.log.warn({ err }, 'the database is unavailable: the leftover sweep waits for its next pass');
      else deps.log.warn({ err }, `${what} failed; will retry`);
      return 0;
    });
  };
  const counts: SweepCounts = {
    // First what this process gave up on while the catalog was unreachable.
    undiscarded: await step('discarding uploads the catalog could not remove', () => deps.files.retryDiscards()),
    // The bytes of expired resumable uploads go before their records (the next step).
    expiredTusUploads: await step('sweeping expired resumable uploads', async () => (deps.tus ? deps.tus.sweep(now) : 0)),
    expiredUploads: await step('sweeping expired direct uploads', () => sweepExpiredUploads(deps, now)),
    interruptedUploads: await step('sweeping interrupted uploads', () => sweepInterruptedUploads(deps, graceMs, now)),
    incompleteUploads: await step('sweeping incomplete multipart uploads', () => sweepAbandonedUploads(deps, graceMs, now)),
    leftoverFiles: await step('sweeping leftover files', () => sweepLeftoverFiles(deps, graceMs, now)),
    instancesPruned: await step('pruning dead instances', () => deps.instances.prune(graceMs, now)),
  };
  deps.log.debug(counts, 'leftover sweep');
  return counts;
}

/**
 * Sweeps now (at start-up: what a crashed predecessor left goes first) and every `intervalMs`;
 * `stop` waits for a sweep in progress.
 */
export function startLeftoverSweeper(deps: SweeperDeps & { intervalMs: number }): Periodic {
  return every(deps.intervalMs, () => sweepLeftovers(deps), deps.log, 'leftover sweep');
}
