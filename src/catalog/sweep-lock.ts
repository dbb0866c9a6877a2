import { sql } from 'kysely';
import { type CatalogDb, isPostgres } from './database';

/**
 * Runs `work` only if no other process holds the lock `name`; undefined when one does. On
 * PostgreSQL a session advisory lock, held on a connection of its own for the whole run (`work`
 * uses the pool's others): a process that dies loses it with its connection, so a crash never
 * leaves the lock taken. SQLite is one host's catalog: `work` just runs (what it does must then
 * be safe to run twice at once).
 */
export async function withSweepLock<T>(db: CatalogDb, name: string, work: () => Promise<T>): Promise<T | undefined> {
  if (!isPostgres(db)) return work();
  return db.connection().execute(async (conn) => {
    const { rows } = await sql<{ locked: boolean }>`select pg_try_advisory_lock(hashtext(${name})) as locked`.execute(conn);
    if (!rows[0]?.locked) return undefined;
    try {
      return await work();
    } finally {
      await sql`select pg_advisory_unlock(hashtext(${name}))`.execute(conn);
    }
  });
}
