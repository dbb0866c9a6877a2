import pg from 'pg';

/**
 * Set on errors from node-postgres that mean the server could not be reached or went away
 * mid-query (a restart, a failover, an outage), as opposed to a statement's own failure. SQLite
 * has no such outage.
 */
const UNAVAILABLE = Symbol('stowage.databaseUnavailable');

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
export function markIfUnavailable(err: unknown): unknown {
  if (err && typeof err === 'object' && isConnectionFailure(err)) Object.defineProperty(err, UNAVAILABLE, { value: true });
  return err;
}

/** Whether `err`, or an error it was caused by, says the catalog database could not be reached. */
export function isDatabaseUnavailable(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if ((e as { [UNAVAILABLE]?: boolean })[UNAVAILABLE]) return true;
  }
  return false;
}
