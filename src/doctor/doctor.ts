import { checkIncompleteUploads } from './check-incomplete';
import { checkLeftovers } from './check-leftovers';
import { checkOrphans } from './check-orphans';
import { checkStalePending } from './check-pending';
import { checkRecords } from './check-records';
import { checkStuckTasks } from './check-tasks';
import { checkTusLeftovers } from './check-tus';
import { checkUnmirrored } from './check-unmirrored';
import { checkWebhooks } from './check-webhooks';
import type { DoctorDeps, DoctorScope, ProgressListener } from './context';
import { type DoctorReport, countProblem, emptySummary, type Problem } from './report';

/**
 * Runs every check and collects what they found. Each check is its own small unit yielding
 * problems page by page; a new one is one more generator in `checks` below.
 * Only problems are kept in memory, never the catalog or a store listing.
 */
export async function runChecks(
  deps: DoctorDeps,
  scope: DoctorScope,
  progress: ProgressListener = () => undefined,
  now = new Date(),
): Promise<DoctorReport> {
  const summary = emptySummary();
  const problems: Problem[] = [];
  // Orphans have no owner, so an owner-scoped run can't say anything about them.
  const orphansSkipped = scope.owner !== undefined;
  let incompleteUploadsUnchecked: string | undefined;
  const checks = [
    checkRecords(deps, scope, (e) => {
      summary.recordsChecked = e.done;
      progress(e);
    }),
    checkStalePending(deps, scope, now, progress),
    checkStuckTasks(deps, scope, now, progress),
    checkUnmirrored(deps, scope, now, progress),
    checkWebhooks(deps, scope, progress),
    // Leftovers of dead processes, incomplete and resumable uploads' leftovers have no owner either.
    ...(orphansSkipped
      ? []
      : [
          checkOrphans(deps, scope, now, (e) => {
            summary.blobsListed = e.done;
            progress(e);
          }),
          checkLeftovers(deps, scope, now, progress),
          checkIncompleteUploads(deps, scope, now, progress, (why) => (incompleteUploadsUnchecked = why)),
          checkTusLeftovers(deps, scope, now, progress),
        ]),
  ];
  for (const check of checks) {
    for await (const problem of check) {
      problems.push(problem);
      countProblem(summary, problem);
    }
  }
  return {
    startedAt: now.toISOString(),
    finishedAt: new Date().toISOString(),
    problems,
    actions: [],
    summary,
    orphansSkipped,
    ...(incompleteUploadsUnchecked ? { incompleteUploadsUnchecked } : {}),
  };
}
