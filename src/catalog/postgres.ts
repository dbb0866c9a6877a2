import type { PostgresPool, PostgresPoolClient } from 'kysely';
import pg from 'pg';
import { parse, toClientConfig } from 'pg-connection-string';
import type { PostgresSettings } from './database-settings';
import { markUnavailable } from './unavailable';

/** SQLSTATEs of a server shutting down or starting: admin_shutdown, crash_shutdown, cannot_connect_now. */
const GOING_AWAY = new Set(['57P01', '57P02', '57P03']);
/** Socket errors of a server that is not there (or a network that isn't). */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
/**
 * node-postgres's own words for a connection lost or never made: "Connection terminated
 * unexpectedly", "... due to connection timeout", the pool's "timeout exceeded when trying to
 * connect", and a client that already lost its connection being "not queryable".
 */
const LOST = /Connection terminated|timeout exceeded when trying to connect|not queryable/i;

function isConnectionFailure(err: unknown): boolean {
  // Class 08: connection exceptions.
  if (err instanceof pg.DatabaseError) return GOING_AWAY.has(err.code ?? '') || (err.code ?? '').startsWith('08');
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && UNREACHABLE.has(code)) return true;
  return err instanceof Error && LOST.test(err.message);
}

/** Marks `err`, thrown by node-postgres, when it says the database is unavailable; returns it. */
function markIfUnavailable(err: unknown): unknown {
  return err && typeof err === 'object' && isConnectionFailure(err) ? markUnavailable(err) : err;
}

/** PostgreSQL's type oid for int8 (bigint), which also types count(*). */
const INT8_OID = 20;

/**
 * Columns declared `bigint` (file sizes) and `count(*)` come back from node-postgres as strings
 * by default; the catalog's types (and SQLite) say number. Sizes stay far below 2^53.
 */
const catalogTypes = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format ?? 'text')) as typeof pg.types.getTypeParser,
};

/**
 * Connection settings for a pool or a single client. `sslmode` follows libpq: `require` (and
 * `prefer`, `no-verify`) encrypt without verifying the certificate, as Heroku's self-signed one
 * needs; `verify-full` checks it against the system CAs (or `sslrootcert`). TLS is passed
 * explicitly (never left unset) so the driver doesn't read PG* variables on its own.
 */
export function pgClientConfig(settings: PostgresSettings): pg.ClientConfig {
  const url = new URL(settings.url);
  url.searchParams.delete('sslmode');
  const mode = settings.sslMode === 'no-verify' ? 'require' : settings.sslMode;
  if (mode) url.searchParams.set('sslmode', mode);
  const config = toClientConfig(parse(url.toString(), { useLibpqCompat: true }));
  return { ...config, ssl: mode && mode !== 'disable' ? config.ssl : false, types: catalogTypes };
}

/**
 * The catalog's connection pool, as Kysely uses it. Every error that says the server can't be
 * reached or went away is marked (`isDatabaseUnavailable`): a request then answers 503
 * `database_unavailable` and a worker keeps a task's outcome to record later, instead of a 500.
 */
export function openPostgresPool(settings: PostgresSettings, onIdleError: (err: Error) => void): PostgresPool {
  const pool = new pg.Pool({
    ...pgClientConfig(settings),
    max: settings.poolSize,
    application_name: 'stowage',
    // Fail fast on an unreachable server instead of hanging startup.
    connectionTimeoutMillis: 10_000,
  });
  // An idle connection the server drops (restart, failover) is replaced on next use; unhandled,
  // this event would crash the process.
  pool.on('error', onIdleError);
  // The pool listens only while a connection is idle. A checked-out one that loses the server
  // emits 'error' too, which would crash the process: the query in flight (or the next one)
  // fails with that error, and the pool drops the connection when it is released.
  pool.on('connect', (client) => client.on('error', () => undefined));
  const clients = new WeakMap<pg.PoolClient, PostgresPoolClient>();
  // Kysely is given no cursor, so it never calls `query` with one.
  const marking = (client: pg.PoolClient): PostgresPoolClient => ({
    query: ((text: string, parameters: unknown[]) =>
      client.query(text, parameters).catch((err: unknown) => {
        throw markIfUnavailable(err);
      })) as unknown as PostgresPoolClient['query'],
    release: () => client.release(),
  });
  return {
    async connect() {
      const client = await pool.connect().catch((err: unknown) => {
        throw markIfUnavailable(err);
      });
      // One wrapper per connection: Kysely keeps its own state per client object.
      let wrapped = clients.get(client);
      if (!wrapped) clients.set(client, (wrapped = marking(client)));
      return wrapped;
    },
    end: () => pool.end(),
  };
}
