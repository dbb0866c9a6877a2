import type { TasksTable } from '../catalog/schema';
import type { Selectable } from 'kysely';
import { type DoctorDeps, type DoctorScope, PAGE_SIZE, type ProgressListener } from './context';
import type { TaskProblem } from './report';

/**
 * Tasks past their deadline by more than the grace period: queued and due but never started, or
 * running with a lease that ran out and was never reclaimed. Either way no worker is taking tasks
 * (WORKERS=0 and no `stowage worker` process, or every worker crashing).
 */
export async function* checkStuckTasks(
  deps: DoctorDeps,
  scope: DoctorScope,
  now: Date,
  progress: ProgressListener,
): AsyncGenerator<TaskProblem> {
  const cutoff = new Date(now.getTime() - scope.graceMs).toISOString();
  let done = 0;
  let after: Selectable<TasksTable> | undefined;
  for (;;) {
    let query = deps.db
      .selectFrom('tasks')
      .selectAll()
      .where((eb) =>
        eb.or([
          eb.and([eb('status', '=', 'queued'), eb('run_after', '<', cutoff)]),
          eb.and([eb('status', '=', 'running'), eb('running_until', '<', cutoff)]),
        ]),
      );
    if (scope.owner) query = query.where('owner', '=', scope.owner);
    if (scope.since) query = query.where('created_at', '>=', scope.since.toISOString());
    if (after) query = query.where('id', '>', after.id);
    const rows = await query.orderBy('id').limit(PAGE_SIZE).execute();
    for (const task of rows) {
      const status = task.status as 'queued' | 'running';
      yield {
        kind: 'stuck_task',
        owner: task.owner,
        taskId: task.id,
        taskKind: task.kind,
        status,
        reason:
          status === 'queued'
            ? `queued since ${task.run_after} and never started (is a worker running? WORKERS, or a \`stowage worker\` process)`
            : `its worker stopped renewing the lease at ${task.running_until} and no worker took it over (is a worker running?)`,
      };
    }
    done += rows.length;
    progress({ phase: 'tasks', done });
    if (rows.length < PAGE_SIZE) return;
    after = rows[rows.length - 1];
  }
}
