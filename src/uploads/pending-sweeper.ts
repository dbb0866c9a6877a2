import type { Logger } from 'pino';
import type { Files } from '../files/files';
import { every, type Periodic } from '../housekeeping';

const BATCH = 500;

export interface SweepDeps {
  files: Files;
  log: Logger;
}

/**
 * Removes direct uploads still pending after their expiry: the object (whatever the client
 * managed to PUT) first, then the record, so a crash in between leaves a record to retry rather
 * than an orphan object. Returns how many were removed; failures are logged and retried on the
 * next sweep.
 */
export async function sweepExpiredUploads({ files, log }: SweepDeps, now = new Date()): Promise<number> {
  let removed = 0;
  for (const record of await files.expiredUploads(now, BATCH)) {
    try {
      await files.discard(record);
      removed++;
      log.info({ event: 'direct_upload', fileId: record.id, owner: record.owner, outcome: 'expired' }, 'expired direct upload removed');
    } catch (err) {
      log.warn({ err, fileId: record.id, key: record.key }, 'could not remove an expired direct upload; will retry');
    }
  }
  return removed;
}

/** Sweeps now and every `intervalMs` in the background; `stop` waits for a sweep in progress. */
export function startPendingUploadSweeper(deps: SweepDeps & { intervalMs: number }): Periodic {
  return every(deps.intervalMs, () => sweepExpiredUploads(deps), deps.log, 'expired upload sweep');
}
