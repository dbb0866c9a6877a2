import type { StoredTusUpload } from '../uploads/tus/leftovers';
import type { DoctorDeps, DoctorScope, ProgressListener } from './context';
import type { TusLeftoverProblem } from './report';

/**
 * What resumable (tus) uploads left in their store that nothing will resume or finish: an
 * upload's bytes and info with no live `pending` record (none, one whose TUS_EXPIRY has passed,
 * or a file already stored whose tus copy a finish could not remove), untouched for the grace
 * period. The sweep of a running `serve` removes expired uploads with their record; this finds
 * what it missed (no process running, a removal that failed, a record removed by hand).
 */
export async function* checkTusLeftovers(deps: DoctorDeps, scope: DoctorScope, now: Date, progress: ProgressListener): AsyncGenerator<TusLeftoverProblem> {
  const place = deps.tusUploads;
  if (!place) return;
  const cutoff = now.getTime() - scope.graceMs;
  let done = 0;
  for await (const page of place.list()) {
    const verdicts = await notInProgress(deps, page, now);
    for (const upload of page) {
      const reason = verdicts.get(upload.fileId);
      if (!reason || upload.modifiedAt.getTime() > cutoff) continue;
      if (scope.since && upload.modifiedAt < scope.since) continue;
      yield { kind: 'tus_leftover', store: place.store, key: upload.key, fileId: upload.fileId, bytes: upload.bytes, modifiedAt: upload.modifiedAt.toISOString(), reason };
    }
    done += page.length;
    progress({ phase: 'uploads', done });
  }
}

/** Why each of `uploads` is no upload in progress; those with a live pending record are absent. */
export async function notInProgress(deps: Pick<DoctorDeps, 'db'>, uploads: Pick<StoredTusUpload, 'fileId'>[], now: Date): Promise<Map<string, string>> {
  const ids = uploads.map((u) => u.fileId);
  const rows = ids.length ? await deps.db.selectFrom('files').select(['id', 'status', 'expires_at']).where('id', 'in', ids).execute() : [];
  const records = new Map(rows.map((r) => [r.id, r]));
  const verdicts = new Map<string, string>();
  for (const id of ids) {
    const record = records.get(id);
    if (!record) verdicts.set(id, 'no record: nothing will resume or finish this upload');
    else if (record.status === 'ready') verdicts.set(id, 'its file is stored: this is the copy of a finished upload that was not removed');
    else if (record.status !== 'pending') verdicts.set(id, `its file is ${record.status}: nothing will resume this upload`);
    else if (record.expires_at && record.expires_at < now.toISOString()) verdicts.set(id, `the upload expired at ${record.expires_at} (TUS_EXPIRY) and no sweep has removed it`);
  }
  return verdicts;
}
