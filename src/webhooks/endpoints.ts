import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '../catalog/schema';
import type { WebhookSettings } from '../config/webhooks';
import type { TaskQueue } from '../tasks/queue';
import type { Task } from '../tasks/task';
import { DEFAULT_ENDPOINT, type DeliveryPayload, WEBHOOK_TASK, type WebhookEventType } from './events';

/** Where events are sent, and the key they are signed with. */
export interface Endpoint {
  id: string;
  url: string;
  secret: string;
}

export interface OwnerEndpoint extends Endpoint {
  owner: string;
  /** The event types it receives; null: every type. */
  events: WebhookEventType[] | null;
  createdAt: string;
}

/** A new endpoint's signing key, as Standard Webhooks defines it. */
export const newWebhookSecret = (): string => `whsec_${randomBytes(32).toString('base64')}`;

/** A delivery as `GET /v1/webhooks/deliveries` shows it: where the event stands, never the endpoint's URL or secret. */
export function presentDelivery(task: Task) {
  const event = task.payload as Partial<DeliveryPayload>;
  return {
    id: task.id,
    eventId: event.id ?? null,
    type: event.type ?? null,
    endpoint: event.endpoint ?? null,
    status: task.status === 'succeeded' ? 'delivered' : task.status === 'queued' || task.status === 'running' ? 'pending' : 'failed',
    attempts: task.attempts,
    lastError: task.errorCode && task.status !== 'succeeded' ? { code: task.errorCode, message: task.errorMessage } : null,
    nextAttemptAt: task.status === 'queued' ? task.runAfter : null,
    createdAt: task.createdAt,
    finishedAt: task.finishedAt,
  };
}

/** Webhook endpoints: WEBHOOK_URL for every owner, and each owner's own (`stowage webhooks add`); their deliveries. */
export class Webhooks {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly settings: WebhookSettings,
    private readonly queue?: TaskQueue,
  ) {}

  /** The endpoint a delivery goes to, as configured now; undefined once it was removed. */
  readonly endpoint = async (id: string): Promise<Endpoint | undefined> => {
    if (id === DEFAULT_ENDPOINT) return this.settings.endpoint && { id, ...this.settings.endpoint };
    return this.db.selectFrom('webhook_endpoints').select(['id', 'url', 'secret']).where('id', '=', id).executeTakeFirst();
  };

  async add(owner: string, url: string, events: WebhookEventType[] | null): Promise<OwnerEndpoint> {
    const endpoint = { id: `wh_${randomBytes(8).toString('hex')}`, owner, url, secret: newWebhookSecret(), events, createdAt: new Date().toISOString() };
    await this.db
      .insertInto('webhook_endpoints')
      .values({ id: endpoint.id, owner, url, secret: endpoint.secret, events: events && JSON.stringify(events), created_at: endpoint.createdAt })
      .execute();
    return endpoint;
  }

  async list(owner?: string): Promise<OwnerEndpoint[]> {
    let query = this.db.selectFrom('webhook_endpoints').selectAll();
    if (owner) query = query.where('owner', '=', owner);
    const rows = await query.orderBy('owner').orderBy('created_at').execute();
    return rows.map((r) => ({ id: r.id, owner: r.owner, url: r.url, secret: r.secret, events: r.events === null ? null : JSON.parse(r.events), createdAt: r.created_at }));
  }

  /** False when there was no such endpoint. Deliveries still queued for it end as `webhook_endpoint_removed`. */
  async remove(id: string): Promise<boolean> {
    const result = await this.db.deleteFrom('webhook_endpoints').where('id', '=', id).executeTakeFirst();
    return result.numDeletedRows > 0n;
  }

  /** The owner's deliveries, newest first. */
  async deliveries(owner: string, page: { limit: number; cursor?: string }) {
    if (!this.queue) throw new Error('Webhooks was built without the task queue');
    const { tasks, nextCursor } = await this.queue.list(owner, { ...page, kind: WEBHOOK_TASK });
    return { deliveries: tasks.map(presentDelivery), nextCursor: nextCursor ?? null };
  }
}
