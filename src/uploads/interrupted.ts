import type { Logger } from 'pino';
import type { FileRecord } from '../catalog/files';
import { type Instances, SILENT_AFTER_MS } from '../catalog/instances';
import type { Files } from '../files/files';

const BATCH = 500;

/** A pending upload that is no longer in progress, and why it is judged so. */
export interface InterruptedUpload {
  record: FileRecord;
  /** Its writing process is known to be dead (`gone`): nobody can publish it any more. */
  writerGone: boolean;
  reason: string;
}

/**
 * Pending uploads (not direct uploads, which expire) no longer in progress:
 * - written by a process that is gone (no longer running on this host, or no longer registered):
 *   at once, whatever its age;
 * - written by a process not heard from for a while (another host), or by an unrecorded one
 *   (from before processes were recorded): once idle for longer than `graceMs`.
 * An upload of a live process (this one included) is never among them, however long it takes.
 */
export async function findInterruptedUploads(
  deps: { files: Files; instances: Instances },
  graceMs: number,
  now = new Date(),
  only?: { createdAfter?: Date; owner?: string },
): Promise<InterruptedUpload[]> {
  const idleBefore = new Date(now.getTime() - graceMs);
  const candidates = await deps.files.pendingUploadsToJudge(
    deps.instances.self,
    { silentBefore: new Date(now.getTime() - SILENT_AFTER_MS), idleBefore },
    BATCH,
    only,
  );
  const found: InterruptedUpload[] = [];
  for (const { record, writer } of candidates) {
    const idle = record.updated_at < idleBefore.toISOString();
    const started = `the upload started at ${record.created_at}`;
    if (!record.upload_instance) {
      if (idle) found.push({ record, writerGone: false, reason: `${started} and never finished` });
      continue;
    }
    const state = deps.instances.stateOf(record.upload_instance, writer, now);
    if (state === 'gone') {
      found.push({ record, writerGone: true, reason: `${started}; its process (${record.upload_instance}) is no longer running` });
    } else if (state === 'silent' && idle) {
      const silence = writer ? `has not been heard from since ${writer.last_seen}` : 'is not registered';
      found.push({ record, writerGone: false, reason: `${started}; its process (${record.upload_instance}) ${silence}` });
    }
  }
  return found;
}

/**
 * Discards interrupted uploads with whatever blob they have: through `Files.discard` (blob, then
 * record) when the writer is gone, else record first (`discardAbandoned`), so a writer that is
 * only cut off can never publish a record whose blob was removed. Failures are logged and retried
 * next time. Returns how many were removed.
 */
export async function sweepInterruptedUploads(deps: { files: Files; instances: Instances; log: Logger }, graceMs: number, now = new Date()): Promise<number> {
  let removed = 0;
  for (const { record, writerGone, reason } of await findInterruptedUploads(deps, graceMs, now)) {
    try {
      if (writerGone) await deps.files.discard(record);
      else if (!(await deps.files.discardAbandoned(record))) continue;
      removed++;
      deps.log.info(
        { event: 'interrupted_upload', fileId: record.id, owner: record.owner, writer: record.upload_instance, outcome: 'discarded' },
        `interrupted upload discarded: ${reason}`,
      );
    } catch (err) {
      deps.log.warn({ err, fileId: record.id, key: record.key }, 'could not discard an interrupted upload; will retry');
    }
  }
  return removed;
}
