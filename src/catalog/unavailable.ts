/**
 * Set on errors from node-postgres that mean the server could not be reached or went away
 * mid-query (a restart, a failover, an outage), as opposed to a statement's own failure. SQLite
 * has no such outage. What node-postgres's errors mean is judged in postgres.ts, so SQLite
 * servers never load pg.
 */
const UNAVAILABLE = Symbol('stowage.databaseUnavailable');

/** Marks `err` as saying the catalog database is unavailable; returns it. */
export function markUnavailable(err: object): object {
  Object.defineProperty(err, UNAVAILABLE, { value: true });
  return err;
}

/** Whether `err`, or an error it was caused by, says the catalog database could not be reached. */
export function isDatabaseUnavailable(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if ((e as { [UNAVAILABLE]?: boolean })[UNAVAILABLE]) return true;
  }
  return false;
}
