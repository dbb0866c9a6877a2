import type { Kysely } from 'kysely';
import { compiledOnce } from './compiled';
import type { Database } from './schema';

/** Bytes and files. */
export interface Tally {
  bytes: number;
  files: number;
}

/** What an owner holds in one store: ready (and missing, expired...) files, and uploads in progress. */
export interface StoreUsage {
  owner: string;
  store: string;
  stored: Tally;
  /** Pending uploads: the bytes each reserved (its announced size, or its request's length). */
  reserved: Tally;
}

/**
 * What counts against a quota: every record but failed uploads (their bytes are gone). A pending
 * record counts with its `size`, the bytes reserved for it; a ready one with its size. Records
 * removed by any path (delete, discard, the sweeps) stop counting at once.
 */
export async function usageOf(db: Kysely<Database>, owner: string): Promise<Tally> {
  const row = await db
    .selectFrom('files')
    .select((eb) => [eb.fn.coalesce(eb.fn.sum<number>('size'), eb.lit(0)).as('bytes'), eb.fn.countAll<number>().as('files')])
    .where('owner', '=', owner)
    .where('status', '!=', 'failed')
    .executeTakeFirstOrThrow();
  return { bytes: Number(row.bytes), files: Number(row.files) };
}

/** Usage per owner (or one owner's) and store, stored and reserved apart; owners and stores sorted. */
export async function usageByStore(db: Kysely<Database>, owner?: string): Promise<StoreUsage[]> {
  let query = db
    .selectFrom('files')
    .select((eb) => [
      'owner',
      'store',
      eb.case().when('status', '=', 'pending').then(1).else(0).end().as('pending'),
      eb.fn.coalesce(eb.fn.sum<number>('size'), eb.lit(0)).as('bytes'),
      eb.fn.countAll<number>().as('files'),
    ])
    .where('status', '!=', 'failed');
  if (owner !== undefined) query = query.where('owner', '=', owner);
  const rows = await query.groupBy(['owner', 'store', 'pending']).execute();
  const byKey = new Map<string, StoreUsage>();
  for (const row of rows) {
    const key = `${row.owner}\0${row.store}`;
    const entry = byKey.get(key) ?? { owner: row.owner, store: row.store, stored: { bytes: 0, files: 0 }, reserved: { bytes: 0, files: 0 } };
    const tally = Number(row.pending) === 1 ? entry.reserved : entry.stored;
    tally.bytes += Number(row.bytes);
    tally.files += Number(row.files);
    byKey.set(key, entry);
  }
  return [...byKey.values()].sort((a, b) => (a.owner === b.owner ? a.store.localeCompare(b.store) : a.owner.localeCompare(b.owner)));
}

/** The bytes reserved by these pending records (their `size` now). */
export async function reservedBytes(db: Kysely<Database>, ids: string[]): Promise<number> {
  if (ids.length === 0) return 0;
  const row = await db
    .selectFrom('files')
    .select((eb) => eb.fn.coalesce(eb.fn.sum<number>('size'), eb.lit(0)).as('bytes'))
    .where('id', 'in', ids)
    .where('status', '=', 'pending')
    .executeTakeFirstOrThrow();
  return Number(row.bytes);
}

/**
 * Takes the owner's usage lock for the rest of the transaction `trx`: an upsert, which on
 * PostgreSQL locks the owner's row until commit (another instance's reservation waits for it) and
 * on SQLite takes the database's write lock. Called before usage is read, so the reading is of
 * every reservation committed before.
 */
export async function lockUsage(trx: Kysely<Database>, owner: string): Promise<void> {
  const at = new Date().toISOString();
  await trx
    .insertInto('usage_locks')
    .values({ owner, locked_at: at })
    .onConflict((oc) => oc.column('owner').doUpdateSet({ locked_at: at }))
    .execute();
}

export interface QuotaOverride {
  owner: string;
  maxBytes: number | null;
  maxFiles: number | null;
  updatedAt: string;
}

const fromRow = (r: { owner: string; max_bytes: number | null; max_files: number | null; updated_at: string }): QuotaOverride => ({
  owner: r.owner,
  maxBytes: r.max_bytes === null ? null : Number(r.max_bytes),
  maxFiles: r.max_files === null ? null : Number(r.max_files),
  updatedAt: r.updated_at,
});

/** Every upload asks for its owner's: compiled once. */
const overrideOf = compiledOnce((db, owner: string) => db.selectFrom('quotas').selectAll().where('owner', '=', owner));

/** Owners' own quotas, set by the operator. */
export class QuotaOverrides {
  constructor(private readonly db: Kysely<Database>) {}

  async get(owner: string, db: Kysely<Database> = this.db): Promise<QuotaOverride | undefined> {
    const [row] = (await overrideOf(db, owner)).rows;
    return row && fromRow(row);
  }

  async list(): Promise<QuotaOverride[]> {
    return (await this.db.selectFrom('quotas').selectAll().orderBy('owner').execute()).map(fromRow);
  }

  /** Sets what is given (a limit left out keeps its value, or the default for a new owner). */
  async set(owner: string, limits: { maxBytes?: number; maxFiles?: number }): Promise<QuotaOverride> {
    const at = new Date().toISOString();
    const changes = { ...(limits.maxBytes !== undefined && { max_bytes: limits.maxBytes }), ...(limits.maxFiles !== undefined && { max_files: limits.maxFiles }), updated_at: at };
    await this.db
      .insertInto('quotas')
      .values({ owner, max_bytes: limits.maxBytes ?? null, max_files: limits.maxFiles ?? null, updated_at: at })
      .onConflict((oc) => oc.column('owner').doUpdateSet(changes))
      .execute();
    return (await this.get(owner))!;
  }

  /** Back to the defaults; false when the owner had no quota of its own. */
  async remove(owner: string): Promise<boolean> {
    const result = await this.db.deleteFrom('quotas').where('owner', '=', owner).executeTakeFirst();
    return result.numDeletedRows > 0n;
  }
}

/** A stored file's record as `usage --verify` checks it. */
export type CountedRecord = { id: string; owner: string; store: string; key: string; size: number; machine_id: string | null };

/** Records whose blobs `usage --verify` checks (not pending, failed or expired), by id, a page after `after` at a time. */
export async function countedRecords(db: Kysely<Database>, page: { owner?: string; after?: string; limit: number }): Promise<CountedRecord[]> {
  let query = db
    .selectFrom('files')
    .select(['id', 'owner', 'store', 'key', 'size', 'machine_id'])
    // An expired record's blob may already be gone: the expiry sweep deletes the record next.
    .where('status', 'not in', ['pending', 'failed', 'expired']);
  if (page.owner !== undefined) query = query.where('owner', '=', page.owner);
  if (page.after !== undefined) query = query.where('id', '>', page.after);
  const rows = await query.orderBy('id').limit(page.limit).execute();
  return rows.map((r) => ({ ...r, size: Number(r.size) }));
}

/** Which of `keys` some record of `store` (any status) claims; for a mirror store, a record of any store. */
export async function claimedKeys(db: Kysely<Database>, keys: string[], store?: string): Promise<Set<string>> {
  if (keys.length === 0) return new Set();
  let query = db.selectFrom('files').select('key').where('key', 'in', keys);
  if (store !== undefined) query = query.where('store', '=', store);
  return new Set((await query.execute()).map((r) => r.key));
}
