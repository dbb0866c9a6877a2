import type { FileRecord } from '../catalog/files';
import { findInterruptedUploads } from '../uploads/interrupted';
import { type DoctorDeps, type DoctorScope, PAGE_SIZE, type ProgressListener } from './context';
import { type FileProblem, recordProblem } from './report';

/**
 * Uploads still `pending` past the grace period. A live upload turns `ready` (or is removed)
 * when its request ends; one left pending that long belongs to a process that died mid-upload.
 * Uploads that expire (direct and resumable ones, which may rightly take hours) are not stale
 * before their expiry: the sweep removes them then.
 * Pages by (updated_at, id), the order of the (status, updated_at) index. Then the younger ones
 * whose writing process is known to be gone (killed mid-upload): no grace for those.
 */
export async function* checkStalePending(
  deps: DoctorDeps,
  scope: DoctorScope,
  now: Date,
  progress: ProgressListener,
): AsyncGenerator<FileProblem> {
  const cutoff = new Date(now.getTime() - scope.graceMs).toISOString();
  let done = 0;
  let after: FileRecord | undefined;
  for (;;) {
    let query = deps.db
      .selectFrom('files')
      .selectAll()
      .where('status', '=', 'pending')
      .where('updated_at', '<', cutoff)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '<', now.toISOString())]));
    if (scope.owner) query = query.where('owner', '=', scope.owner);
    if (scope.since) query = query.where('created_at', '>=', scope.since.toISOString());
    if (after) {
      const last = after;
      query = query.where((eb) => eb(eb.refTuple('updated_at', 'id'), '>', eb.tuple(last.updated_at, last.id)));
    }
    const rows = await query.orderBy('updated_at').orderBy('id').limit(PAGE_SIZE).execute();
    for (const record of rows) {
      yield recordProblem('stale_pending', record, `the upload started at ${record.created_at} and never finished`);
    }
    done += rows.length;
    progress({ phase: 'pending', done });
    if (rows.length < PAGE_SIZE) break;
    after = rows[rows.length - 1];
  }
  for (const { record, writerGone, reason } of await findInterruptedUploads(deps, scope.graceMs, now, { owner: scope.owner, createdAfter: scope.since })) {
    if (writerGone && record.updated_at >= cutoff) yield recordProblem('stale_pending', record, reason);
  }
}
