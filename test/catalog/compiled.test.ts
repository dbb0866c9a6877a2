import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { compiledOnce } from '../../src/catalog/compiled';
import { openSqlite } from '../../src/catalog/database';
import { migrateToLatest } from '../../src/catalog/migrations';

// Hot queries are compiled once and run with each call's values (see compiledOnce): every call
// reads and writes with its own values, in a transaction too, and a query whose values Kysely
// doesn't pass through as parameters is refused rather than run with the wrong ones.
describe('queries compiled once', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'stowage-compiled-'));
  });
  afterEach(() => fsp.rm(dir, { recursive: true, force: true }));

  it('run with each call’s own values, on the database or a transaction', async () => {
    const db = openSqlite(path.join(dir, 'catalog.db'));
    try {
      await migrateToLatest(db);
      const upsert = compiledOnce((d, owner: string, maxFiles: number | null, at: string) => d.insertInto('quotas').values({ owner, max_bytes: null, max_files: maxFiles, updated_at: at }));
      const quotaOf = compiledOnce((d, owner: string) => d.selectFrom('quotas').select(['owner', 'max_files']).where('owner', '=', owner));
      await upsert(db, 'alice', 3, '2026-01-01T00:00:00.000Z');
      await db.transaction().execute((trx) => upsert(trx, 'bob', null, '2026-01-02T00:00:00.000Z'));
      expect((await quotaOf(db, 'alice')).rows).toEqual([{ owner: 'alice', max_files: 3 }]);
      expect((await quotaOf(db, 'bob')).rows).toEqual([{ owner: 'bob', max_files: null }]);
      expect((await quotaOf(db, 'carol')).rows).toEqual([]);
    } finally {
      await db.destroy();
    }
  });

  it('refuse a value that is not passed as a parameter', async () => {
    const db = openSqlite(':memory:');
    try {
      const inlined = compiledOnce((d, n: string) => d.selectNoFrom(sql.lit(n).as('n')));
      await expect(inlined(db, 'x')).rejects.toThrow(/not every value is a parameter/);
    } finally {
      await db.destroy();
    }
  });
});
