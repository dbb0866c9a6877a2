import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { compiledOnce } from '../catalog/compiled';
import type { FileRecord, ReadyHook } from '../catalog/files';
import type { Database } from '../catalog/schema';
import { newTaskRow } from '../tasks/queue';
import type { Task } from '../tasks/task';

/** Every event type an endpoint can receive. */
export const WEBHOOK_EVENTS = ['file.ready', 'file.deleted', 'file.expired', 'file.missing', 'task.succeeded', 'task.failed'] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENTS)[number];

/** Task kind of one event's delivery to one endpoint. */
export const WEBHOOK_TASK = 'webhook';

/** Every upload asks for its owner's endpoints: compiled once. */
const endpointsOf = compiledOnce((db, owner: string) => db.selectFrom('webhook_endpoints').select(['id', 'events']).where('owner', '=', owner));

/** The endpoint id of WEBHOOK_URL (rows of `webhook_endpoints` have random ids). */
export const DEFAULT_ENDPOINT = 'default';

/**
 * Retries are bounded by WEBHOOK_GIVE_UP, not by a count: enough attempts that the time runs
 * out first (the delay doubles up to an hour).
 */
const DELIVERY_MAX_ATTEMPTS = 10_000;

/** A delivery task's payload: the event as sent, and where to. */
export interface DeliveryPayload {
  endpoint: string;
  /** The `webhook-id`: the same on every attempt, so receivers can drop duplicates. */
  id: string;
  type: WebhookEventType;
  timestamp: string;
  data: unknown;
}

/** What a file event says about the file. */
export function fileEventData(record: FileRecord) {
  return {
    id: record.id,
    owner: record.owner,
    name: record.name,
    contentType: record.content_type,
    size: Number(record.size),
    sha256: record.sha256,
    status: record.status,
    createdAt: record.created_at,
  };
}

/**
 * Queues webhook deliveries for events, on the executor of the transaction that makes the
 * event happen (a file turning ready, a task finishing): an event whose change rolls back is
 * never sent, and one that commits is delivered at least once. One delivery per endpoint that
 * wants the event: WEBHOOK_URL (every owner's events) and the owner's own endpoints.
 */
export class WebhookEvents {
  constructor(private readonly o: { defaultEndpoint: boolean; taskKinds: readonly string[] }) {}

  /** Queues `type` with `data` for every endpoint of `owner` that takes it. */
  async emit(db: Kysely<Database>, owner: string, type: WebhookEventType, items: unknown[]): Promise<void> {
    if (items.length === 0) return;
    await this.queue(db, owner, type, await this.endpointsFor(db, owner, type), items);
  }

  /** The endpoints that take `type` for `owner`: WEBHOOK_URL's and the owner's own. */
  private async endpointsFor(db: Kysely<Database>, owner: string, type: WebhookEventType): Promise<string[]> {
    const { rows } = await endpointsOf(db, owner);
    return [
      ...(this.o.defaultEndpoint ? [DEFAULT_ENDPOINT] : []),
      ...rows.filter((r) => r.events === null || (JSON.parse(r.events) as string[]).includes(type)).map((r) => r.id),
    ];
  }

  private async queue(db: Kysely<Database>, owner: string, type: WebhookEventType, endpoints: string[], items: unknown[]): Promise<void> {
    if (endpoints.length === 0) return;
    const timestamp = new Date().toISOString();
    const tasks = items.flatMap((data) => {
      const id = `msg_${randomBytes(16).toString('hex')}`;
      return endpoints.map((endpoint) =>
        newTaskRow(WEBHOOK_TASK, owner, { endpoint, id, type, timestamp, data } satisfies DeliveryPayload, { maxAttempts: DELIVERY_MAX_ATTEMPTS }),
      );
    });
    await db.insertInto('tasks').values(tasks).execute();
  }

  /**
   * The ready hook (`Files`): `file.ready` for files of `owner` about to be published, queued in
   * the publishing transaction; nothing to do (and no record read) when no endpoint takes it.
   * The endpoints are looked up before that transaction, as a read inside it would see them on
   * PostgreSQL: one added meanwhile hears of the files published after.
   */
  readonly fileReady: ReadyHook = async (db, owner) => {
    const endpoints = await this.endpointsFor(db, owner, 'file.ready');
    if (endpoints.length === 0) return undefined;
    return async (trx, fileIds) => {
      const records = await trx.selectFrom('files').selectAll().where('id', 'in', fileIds).execute();
      await this.queue(trx, owner, 'file.ready', endpoints, records.map(fileEventData));
    };
  };

  /** `file.deleted`, `file.missing` or `file.expired` for records, grouped by owner. */
  async fileEvent(db: Kysely<Database>, type: 'file.ready' | 'file.deleted' | 'file.missing' | 'file.expired', records: FileRecord[]): Promise<void> {
    const owners = new Set(records.map((r) => r.owner));
    for (const owner of owners) {
      await this.emit(db, owner, type, records.filter((r) => r.owner === owner).map(fileEventData));
    }
  }

  /**
   * The seam for expiry: `file.expired` for records the sweep expires, on its transaction.
   * Call it in the same transaction that marks them expired.
   */
  fileExpired(records: FileRecord[], db: Kysely<Database>): Promise<void> {
    return this.fileEvent(db, 'file.expired', records);
  }

  /**
   * The finish hook (`TaskQueue`): `task.succeeded` or `task.failed` for tasks an owner asked for
   * (reports), in the transaction that records the outcome. Deliveries and mirror copies are
   * the service's own work and send no events.
   */
  readonly taskFinished = async (db: Kysely<Database>, task: Task, outcome: { status: 'succeeded' | 'failed'; error?: { code: string; message: string }; outputFileIds?: string[] }): Promise<void> => {
    if (!this.o.taskKinds.includes(task.kind)) return;
    await this.emit(db, task.owner, outcome.status === 'succeeded' ? 'task.succeeded' : 'task.failed', [
      {
        id: task.id,
        kind: task.kind,
        owner: task.owner,
        status: outcome.status,
        error: outcome.error ?? null,
        outputs: outcome.outputFileIds ?? [],
        createdAt: task.createdAt,
      },
    ]);
  };
}
