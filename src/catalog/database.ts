import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { ConfigError } from '../errors';
import type { Database } from './schema';

export type CatalogDb = Kysely<Database>;

/**
 * Opens the embedded SQLite catalog (a file beside the volume store, or in memory). WAL lets
 * readers proceed while an upload commits; `synchronous=NORMAL` is durable across process
 * crashes in WAL mode, which is the failure we design for.
 */
export function openDatabase(databasePath: string): CatalogDb {
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
  return new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
}
