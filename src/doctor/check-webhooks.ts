import { WEBHOOK_TASK } from '../webhooks/events';
import { type DoctorDeps, type DoctorScope, PAGE_SIZE, type ProgressListener } from './context';
import type { WebhookProblem } from './report';

/**
 * Webhook deliveries given up (`webhook_given_up`): their endpoint kept failing for
 * WEBHOOK_GIVE_UP. Reported until TASK_RETENTION removes them; with `--since`, only those
 * given up since then.
 */
export async function* checkWebhooks(deps: DoctorDeps, scope: DoctorScope, progress: ProgressListener): AsyncGenerator<WebhookProblem> {
  let done = 0;
  let after: string | undefined;
  for (;;) {
    let query = deps.db
      .selectFrom('tasks')
      .select(['id', 'owner', 'payload', 'error_message', 'finished_at'])
      .where('kind', '=', WEBHOOK_TASK)
      .where('status', '=', 'failed')
      .where('error_code', '=', 'webhook_given_up');
    if (scope.owner) query = query.where('owner', '=', scope.owner);
    if (scope.since) query = query.where('finished_at', '>=', scope.since.toISOString());
    if (after) query = query.where('id', '>', after);
    const rows = await query.orderBy('id').limit(PAGE_SIZE).execute();
    for (const row of rows) {
      const event = JSON.parse(row.payload) as { type?: string; endpoint?: string };
      yield {
        kind: 'webhook_given_up',
        owner: row.owner,
        deliveryId: row.id,
        type: event.type ?? 'unknown',
        endpoint: event.endpoint ?? 'unknown',
        reason: `given up at ${row.finished_at}: ${row.error_message}`,
      };
    }
    done += rows.length;
    progress({ phase: 'tasks', done });
    if (rows.length < PAGE_SIZE) return;
    after = rows[rows.length - 1].id;
  }
}
