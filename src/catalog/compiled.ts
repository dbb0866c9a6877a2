import type { Compilable, CompiledQuery, Kysely, QueryResult } from 'kysely';
import type { Database } from './schema';

/**
 * A query whose shape never changes, built and compiled by Kysely once per kind of database.
 * Kysely builds and compiles every query anew, which for the hot ones (an API key, a file record,
 * an upload's insert and publish) cost more CPU than SQLite running them (`npm run bench --
 * small`). `build` is called once, with a placeholder for each parameter; each call runs the
 * compiled SQL, on its own executor (a transaction's), with its values in their places.
 */
export function compiledOnce<P extends unknown[], R>(build: (db: Kysely<Database>, ...params: P) => Compilable<R>): (db: Kysely<Database>, ...params: P) => Promise<QueryResult<R>> {
  // By the dialect's adapter class: SQLite and PostgreSQL write the same query differently.
  const byDialect = new Map<unknown, { query: CompiledQuery<R>; slots: (number | undefined)[] }>();
  return async (db, ...params) => {
    const dialect = db.getExecutor().adapter.constructor;
    let compiled = byDialect.get(dialect);
    if (!compiled) {
      const marks = params.map((_, i) => `\u0000compiled-once-parameter-${i}\u0000`);
      const query = build(db, ...(marks as P)).compile();
      const slots = query.parameters.map((p) => (typeof p === 'string' && marks.includes(p) ? marks.indexOf(p) : undefined));
      // A value that didn't become a parameter as it was (transformed, or inlined) can't be swapped.
      if (new Set(slots.filter((s) => s !== undefined)).size !== params.length) throw new Error(`compiledOnce: not every value is a parameter of ${query.sql}`);
      compiled = { query, slots };
      byDialect.set(dialect, compiled);
    }
    const { query, slots } = compiled;
    return db.executeQuery({ ...query, parameters: query.parameters.map((p, i) => (slots[i] === undefined ? p : params[slots[i]!])) });
  };
}
