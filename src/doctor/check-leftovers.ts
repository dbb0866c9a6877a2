import { findLeftovers } from '../leftovers';
import type { DoctorDeps, DoctorScope, ProgressListener } from './context';
import type { LeftoverProblem } from './report';

/**
 * What processes that are no longer running left outside the catalog: temp files of uploads in
 * each directory store's `.tmp`, and copies of report sources in their work directories (or, from
 * older versions, `stowage-source-*` in TMPDIR). Named after a process that is gone: reported
 * whatever their age; after one not heard from lately, or after none: once untouched for the
 * grace period. A live process's files (this host or another sharing the volume) never are.
 */
export async function* checkLeftovers(deps: DoctorDeps, scope: DoctorScope, now: Date, progress: ProgressListener): AsyncGenerator<LeftoverProblem> {
  const found = await findLeftovers(deps.scratch, deps.instances, scope.graceMs, now, { modifiedAfter: scope.since });
  progress({ phase: 'leftovers', done: found.length });
  for (const l of found) {
    yield {
      kind: l.kind === 'temp' ? 'temp_leftover' : 'source_leftover',
      path: l.path,
      ...(l.store && { store: l.store }),
      bytes: l.bytes,
      modifiedAt: l.modifiedAt.toISOString(),
      ...(l.writer && { writer: l.writer }),
      reason: l.reason,
    };
  }
}
