import type { CatalogDb } from '../catalog/database';
import type { FileRecord } from '../catalog/files';
import { MIRROR_TASK, mirrorPayload } from '../mirror/enqueue';
import { type DoctorDeps, type DoctorScope, filesInScope, PAGE_SIZE, type ProgressListener } from './context';
import { type FileProblem, recordProblem } from './report';

/** Per file: whether a mirror task is still trying, and why the last one that gave up failed. */
async function mirrorTasksOf(db: CatalogDb, fileIds: string[]): Promise<Map<string, { trying: boolean; lastError?: string }>> {
  const byFile = new Map<string, { trying: boolean; lastError?: string }>();
  if (fileIds.length === 0) return byFile;
  const ids = new Map(fileIds.map((id) => [mirrorPayload(id), id]));
  const tasks = await db
    .selectFrom('tasks')
    .select(['payload', 'status', 'error_message'])
    .where('kind', '=', MIRROR_TASK)
    .where('payload', 'in', [...ids.keys()])
    .orderBy('created_at')
    .execute();
  for (const task of tasks) {
    const id = ids.get(task.payload)!;
    const seen = byFile.get(id) ?? { trying: false };
    if (task.status === 'queued' || task.status === 'running') seen.trying = true;
    if (task.status === 'failed' && task.error_message) seen.lastError = task.error_message;
    byFile.set(id, seen);
  }
  return byFile;
}

/**
 * With STORAGE_MIRROR: ready files that the mirror holds no verified copy of and that no mirror
 * task is still working on, ready for longer than the grace period. Their copy was given up (the
 * mirror was down for longer than the task's retries last) or never queued (the file was ready
 * before STORAGE_MIRROR was set). Until a copy is made, losing the disk loses them.
 */
export async function* checkUnmirrored(
  deps: DoctorDeps,
  scope: DoctorScope,
  now: Date,
  progress: ProgressListener,
): AsyncGenerator<FileProblem> {
  const mirror = deps.mirror;
  if (!mirror) return;
  const cutoff = new Date(now.getTime() - scope.graceMs).toISOString();
  let done = 0;
  let after: FileRecord | undefined;
  for (;;) {
    let query = filesInScope(
      deps.db
        .selectFrom('files')
        .selectAll()
        .where('status', '=', 'ready')
        .where('mirrored_at', 'is', null)
        .where('store', '!=', mirror.driver)
        .where('updated_at', '<', cutoff),
      deps,
      scope,
    );
    if (after) query = query.where('id', '>', after.id);
    const rows = await query.orderBy('id').limit(PAGE_SIZE).execute();
    const tasks = await mirrorTasksOf(deps.db, rows.map((r) => r.id));
    for (const record of rows) {
      const task = tasks.get(record.id);
      if (task?.trying) continue;
      yield recordProblem(
        'unmirrored',
        record,
        task?.lastError
          ? `the ${mirror.driver} mirror has no copy: its mirror task gave up (${task.lastError})`
          : `the ${mirror.driver} mirror has no copy and none was queued (was the file ready before STORAGE_MIRROR was set?)`,
      );
    }
    done += rows.length;
    progress({ phase: 'mirror', done });
    if (rows.length < PAGE_SIZE) return;
    after = rows[rows.length - 1];
  }
}
