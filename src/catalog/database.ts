import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { type DialectAdapter, Kysely, PostgresAdapter, PostgresDialect, SqliteAdapter, type SqliteDatabase, SqliteDialect, sql } from 'kysely';
import type { DatabaseSettings } from './database-settings';
import { ConfigError } from '../errors';
import type { Database } from './schema';

export type CatalogDb = Kysely<Database>;

/** Statements kept per SQLite catalog: the service's queries are a few dozen shapes (and `in` lists of a few lengths). */
const STATEMENT_CACHE_SIZE = 256;

/**
 * Kysely prepares every query anew, and preparing cost about as much CPU as running the query
 * (`npm run bench -- small`). This hands it the statement prepared the last time the same SQL
 * came, unless that one is still being iterated (a streamed query); the least recently used go
 * first past STATEMENT_CACHE_SIZE.
 */
export function reusingStatements(sqlite: SQLite.Database, size = STATEMENT_CACHE_SIZE): SqliteDatabase {
  const statements = new Map<string, SQLite.Statement>();
  return {
    close: () => sqlite.close(),
    prepare(text) {
      const cached = statements.get(text);
      if (cached?.busy) return sqlite.prepare(text);
      const statement = cached ?? sqlite.prepare(text);
      statements.delete(text);
      statements.set(text, statement);
      if (statements.size > size) statements.delete(statements.keys().next().value!);
      return statement;
    },
  };
}

/**
 * Kysely's SQLite adapter takes no migration lock (it assumes one process), so two processes
 * starting on a new catalog file both created the same tables and one failed. BEGIN IMMEDIATE
 * takes SQLite's write lock for the whole migration (the other waits, up to busy_timeout, then
 * finds the schema up to date).
 */
class SqliteCatalogAdapter extends SqliteAdapter {
  override async acquireMigrationLock(db: Kysely<unknown>): Promise<void> {
    await sql`begin immediate`.execute(db);
  }

  override async releaseMigrationLock(db: Kysely<unknown>): Promise<void> {
    await sql`commit`.execute(db);
  }
}

class SqliteCatalogDialect extends SqliteDialect {
  override createAdapter(): DialectAdapter {
    return new SqliteCatalogAdapter();
  }
}

/**
 * Opens the embedded SQLite catalog (a file beside the volume store, or in memory). WAL lets
 * readers proceed while an upload commits; `synchronous=NORMAL` is durable across process
 * crashes in WAL mode, which is the failure we design for.
 */
export function openSqlite(databasePath: string): CatalogDb {
  let sqlite: SQLite.Database;
  try {
    if (databasePath !== ':memory:') fs.mkdirSync(path.dirname(databasePath), { recursive: true });
    sqlite = new SQLite(databasePath);
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('busy_timeout = 5000');
    sqlite.pragma('foreign_keys = ON');
  } catch (err) {
    throw new ConfigError(
      [`DATABASE_PATH: ${databasePath} cannot be opened for writing (set DATABASE_PATH to a writable file path)`],
      { cause: err },
    );
  }
  return new Kysely<Database>({ dialect: new SqliteCatalogDialect({ database: reusingStatements(sqlite) }) });
}

/**
 * The catalog database: SQLite, or PostgreSQL when DATABASE_URL is set. Both run the same
 * queries and migrations; a PostgreSQL pool connects lazily (migrations make the first query).
 */
export function openDatabase(settings: DatabaseSettings, onIdleError: (err: Error) => void = () => undefined): CatalogDb {
  if (settings.kind === 'sqlite') return openSqlite(settings.path);
  // pg is loaded with the first query, so a SQLite server never loads it.
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool: async () => (await import('./postgres')).openPostgresPool(settings, onIdleError) }) });
}

/** Whether `db` talks to PostgreSQL (row locks, LISTEN/NOTIFY) rather than SQLite. */
export function isPostgres(db: CatalogDb): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}
