import { findAbandonedUploads } from '../uploads/incomplete-multipart';
import type { DoctorDeps, DoctorScope, ProgressListener } from './context';
import type { IncompleteUploadProblem } from './report';

/**
 * Incomplete multipart uploads in object stores that nothing will complete: begun before the grace
 * period and written by no upload in progress (see `findAbandonedUploads`). Their parts stay
 * stored, and billed, until aborted; the sweep of every `serve` and `worker` aborts them too.
 */
export async function* checkIncompleteUploads(
  deps: DoctorDeps,
  scope: DoctorScope,
  now: Date,
  progress: ProgressListener,
  /** Told when a store's keys may not list multipart uploads: the check can't say anything about that store. */
  unchecked: (why: string) => void,
): AsyncGenerator<IncompleteUploadProblem> {
  let done = 0;
  const denied = (store: { driver: string }, err: { permission: string }) => unchecked(`${store.driver} keys need ${err.permission}`);
  for await (const { store, upload, reason } of findAbandonedUploads(deps, scope.graceMs, now, denied)) {
    if (scope.since && upload.startedAt < scope.since) continue;
    progress({ phase: 'uploads', done: ++done });
    yield {
      kind: 'incomplete_upload',
      store: store.driver,
      key: upload.key,
      uploadId: upload.uploadId,
      startedAt: upload.startedAt.toISOString(),
      bytes: upload.bytes,
      reason,
    };
  }
}
