import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { openSqlite, reusingStatements } from '../../src/catalog/database';
import { migrateToLatest } from '../../src/catalog/migrations';

// The SQLite catalog hands Kysely statements it prepared before (see reusingStatements): the same
// query, run again, still reads and writes what it should, past the cache's size too, and a
// statement still being iterated is not handed out again.
describe('SQLite catalog statements reused', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'stowage-statements-'));
  });
  afterEach(() => fsp.rm(dir, { recursive: true, force: true }));

  const key = (i: number) => ({ id: `key_${i}`, owner: `owner${i % 3}`, scope: 'read' as const, label: null, token_hash: `hash${i}`, created_at: new Date(i).toISOString(), expires_at: null, revoked_at: null, last_used_at: null });

  it('answers each run of the same query with its own parameters and the rows as they are now', async () => {
    const db = openSqlite(path.join(dir, 'catalog.db'));
    try {
      await migrateToLatest(db);
      for (let i = 0; i < 30; i++) await db.insertInto('api_keys').values(key(i)).execute();
      for (let i = 0; i < 30; i++) {
        const row = await db.selectFrom('api_keys').select('owner').where('token_hash', '=', `hash${i}`).executeTakeFirst();
        expect(row?.owner).toBe(`owner${i % 3}`);
      }
      await db.updateTable('api_keys').set({ label: 'changed' }).where('id', '=', 'key_4').execute();
      expect((await db.selectFrom('api_keys').select('label').where('token_hash', '=', 'hash4').executeTakeFirst())?.label).toBe('changed');
      // Many shapes of SQL (in-lists of every length up to 300): more than the cache keeps.
      for (let n = 1; n <= 300; n++) {
        const ids = Array.from({ length: n }, (_, i) => `key_${i % 30}`);
        const rows = await db.selectFrom('api_keys').select('id').where('id', 'in', ids).execute();
        expect(rows).toHaveLength(Math.min(n, 30));
      }
    } finally {
      await db.destroy();
    }
  });

  it('prepares the same SQL afresh while its statement is still being iterated', () => {
    // Through Kysely a stream holds SQLite's one connection, so nothing runs beside it; the cache
    // still never hands out a statement that is busy.
    const sqlite = new SQLite(':memory:');
    try {
      sqlite.exec('CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (1), (2), (3)');
      const db = reusingStatements(sqlite);
      const sql = 'SELECT n FROM t WHERE n >= ? ORDER BY n';
      const seen: number[] = [];
      for (const row of db.prepare(sql).iterate([1]) as IterableIterator<{ n: number }>) {
        seen.push(row.n);
        if (row.n === 1) expect(db.prepare(sql).all([2])).toEqual([{ n: 2 }, { n: 3 }]);
      }
      expect(seen).toEqual([1, 2, 3]);
      expect(db.prepare(sql).all([3])).toEqual([{ n: 3 }]);
    } finally {
      sqlite.close();
    }
  });
});
