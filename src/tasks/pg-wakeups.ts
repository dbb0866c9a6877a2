import pg from 'pg';
import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { CatalogDb } from '../catalog/database';
import { pgClientConfig } from '../catalog/postgres';
import type { PostgresSettings } from '../catalog/database-settings';
import type { QueueSignal, QueueWakeups, Subscription } from './wakeups';

const CHANNEL = 'stowage_tasks';
const RECONNECT_MS = 1000;

/**
 * Queue signals over PostgreSQL LISTEN/NOTIFY: workers on any machine wake within a round trip
 * of an enqueue instead of at their next poll, without polling the table faster. NOTIFY goes
 * through the pool; LISTEN needs a connection of its own that stays open (a pooled one would be
 * handed to queries), so each listening process holds one dedicated client and reconnects if
 * it drops. After a reconnect the listener is told "something may have been enqueued", since
 * signals sent while it was away are lost.
 */
export function postgresWakeups(db: CatalogDb, settings: PostgresSettings, log: Logger): QueueWakeups {
  return {
    async publish(signal) {
      await sql`select pg_notify(${CHANNEL}, ${JSON.stringify(signal)})`.execute(db);
    },
    async listen(onSignal) {
      return listenForSignals(settings, log, onSignal);
    },
  };
}

async function listenForSignals(settings: PostgresSettings, log: Logger, onSignal: (s: QueueSignal) => void): Promise<Subscription> {
  let closed = false;
  let client: pg.Client | undefined;
  let retry: NodeJS.Timeout | undefined;

  const connect = async (): Promise<void> => {
    const c = new pg.Client({ ...pgClientConfig(settings), application_name: 'stowage-listener' });
    c.on('notification', (msg) => {
      try {
        onSignal(JSON.parse(msg.payload ?? '') as QueueSignal);
      } catch (err) {
        log.warn({ err, payload: msg.payload }, 'ignored a malformed queue signal');
      }
    });
    c.on('error', (err) => {
      log.warn({ err }, 'queue listener connection lost; reconnecting');
      void c.end().catch(() => undefined);
      if (client === c) scheduleReconnect();
    });
    client = c;
    try {
      await c.connect();
      await c.query(`LISTEN ${CHANNEL}`);
    } catch (err) {
      void c.end().catch(() => undefined);
      throw err;
    }
  };

  const scheduleReconnect = () => {
    client = undefined;
    if (closed || retry) return;
    retry = setTimeout(() => {
      retry = undefined;
      if (closed) return;
      connect().then(
        () => onSignal({ type: 'enqueued', kind: '*' }),
        (err: unknown) => {
          log.warn({ err }, 'queue listener could not reconnect; retrying');
          scheduleReconnect();
        },
      );
    }, RECONNECT_MS);
  };

  // A database that can't be reached now is tried again, as after a lost connection (polling
  // finds the work meanwhile): a process that started listening during an outage still hears.
  await connect().catch((err: unknown) => {
    log.warn({ err }, 'queue listener could not connect; retrying');
    scheduleReconnect();
  });
  return {
    async close() {
      closed = true;
      clearTimeout(retry);
      await client?.end().catch(() => undefined);
    },
  };
}
