import type { Logger } from 'pino';
import { Webhook } from 'standardwebhooks';
import type { WebhookSettings } from '../config/webhooks';
import { TaskFailure, TaskRetry } from '../tasks/task';
import type { TaskHandler } from '../tasks/worker';
import type { DeliveryPayload } from './events';
import type { Endpoint } from './endpoints';

/** What is read of an endpoint's answer (then dropped): enough to let the connection be reused, never more. */
const MAX_ANSWER_BYTES = 64 * 1024;
/** The longest wait between attempts. */
const MAX_RETRY_DELAY_MS = 60 * 60_000;

/**
 * The `webhook` task: sends one event to one endpoint, signed per Standard Webhooks
 * (`webhook-id`, `webhook-timestamp`, `webhook-signature`; a fresh timestamp and signature on
 * every attempt, the same id). A 2xx answer delivers it; anything else (another status, a
 * redirect, which is never followed, a timeout, a refused connection) is tried again, the wait
 * doubling from WEBHOOK_RETRY_DELAY, until WEBHOOK_GIVE_UP after the event, when it is given up
 * (`webhook_given_up`). Each attempt is logged, without the secret or the URL's path and query.
 */
export function webhookHandler(deps: { settings: WebhookSettings; endpoint: (id: string) => Promise<Endpoint | undefined>; log: Logger }): TaskHandler {
  const { settings, log } = deps;
  return async ({ task, signal, working }) => {
    const event = task.payload as DeliveryPayload;
    const endpoint = await deps.endpoint(event.endpoint);
    if (!endpoint) throw new TaskFailure('webhook_endpoint_removed', 'The endpoint was removed before the event was delivered.');
    const body = JSON.stringify({ type: event.type, timestamp: event.timestamp, data: event.data });
    const started = Date.now();
    const attemptLog = log.child({ event: 'webhook.attempt', deliveryId: task.id, eventId: event.id, type: event.type, endpoint: endpoint.id, origin: new URL(endpoint.url).origin, attempt: task.attempts });
    let problem: string;
    try {
      const status = await post(endpoint, event.id, body, AbortSignal.any([signal, AbortSignal.timeout(settings.timeoutMs)]), working);
      if (status >= 200 && status < 300) {
        attemptLog.info({ status, durationMs: Date.now() - started, outcome: 'delivered' }, 'webhook delivered');
        return `Delivered: HTTP ${status}.`;
      }
      problem = status >= 300 && status < 400 ? `The endpoint answered HTTP ${status} (redirects are not followed).` : `The endpoint answered HTTP ${status}.`;
    } catch (err) {
      signal.throwIfAborted();
      problem = describe(err, settings.timeoutMs);
    }
    const retryInMs = Math.min(settings.retryDelayMs * 2 ** (task.attempts - 1), MAX_RETRY_DELAY_MS);
    const deadline = Date.parse(event.timestamp) + settings.giveUpMs;
    if (Date.now() >= deadline) {
      attemptLog.warn({ durationMs: Date.now() - started, outcome: 'given_up', problem }, 'webhook delivery given up');
      throw new TaskFailure('webhook_given_up', `Given up after ${task.attempts} attempts. ${problem}`);
    }
    attemptLog.warn({ durationMs: Date.now() - started, outcome: 'failed', problem, retryInMs }, 'webhook attempt failed');
    // The last attempt is made at the deadline, not an hour past it.
    throw new TaskRetry('webhook_failed', problem, Math.max(0, Math.min(retryInMs, deadline - Date.now())));
  };
}

/** POSTs the signed event; resolves with the status once the answer (up to MAX_ANSWER_BYTES of it) is read. */
async function post(endpoint: Endpoint, id: string, body: string, signal: AbortSignal, working: () => void): Promise<number> {
  const timestamp = new Date();
  const res = await fetch(endpoint.url, {
    method: 'POST',
    redirect: 'manual',
    signal,
    headers: {
      'content-type': 'application/json',
      'user-agent': 'stowage-webhooks',
      'webhook-id': id,
      'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
      'webhook-signature': new Webhook(endpoint.secret).sign(id, timestamp, body),
    },
    body,
  });
  if (res.body) {
    const reader = res.body.getReader();
    let read = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      working();
      read += value.byteLength;
      if (read >= MAX_ANSWER_BYTES) {
        await reader.cancel();
        break;
      }
    }
  }
  return res.status;
}

function describe(err: unknown, timeoutMs: number): string {
  // Duck-typed: fetch's errors may come from another realm (undici's, a test runner's).
  type Described = { name?: unknown; code?: unknown; message?: unknown; cause?: Described };
  const e = err as Described | undefined;
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return `No answer within ${timeoutMs / 1000} s (WEBHOOK_TIMEOUT).`;
  const cause = e?.cause && typeof e.cause === 'object' ? e.cause : e;
  const code = typeof cause?.code === 'string' ? ` (${cause.code})` : '';
  return `The request failed${code}: ${String(cause?.message ?? err)}.`;
}
