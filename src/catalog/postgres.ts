import pg from 'pg';
import { parse, toClientConfig } from 'pg-connection-string';
import type { PostgresSettings } from './database-settings';

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

export function openPostgresPool(settings: PostgresSettings, onIdleError: (err: Error) => void): pg.Pool {
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
  return pool;
}
