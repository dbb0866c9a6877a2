import { Transform, type TransformCallback } from 'node:stream';
import type { Kysely } from 'kysely';
import type { CatalogDb } from '../catalog/database';
import type { Database } from '../catalog/schema';
import { lockUsage, QuotaOverrides, reservedBytes, type StoreUsage, type Tally, usageByStore, usageOf } from '../catalog/usage';
import { QuotaExceeded } from '../errors';

/** An owner's limits; undefined: no limit. */
export interface QuotaLimits {
  bytes?: number;
  files?: number;
}

/** An owner's bytes used and byte limit, as a reservation left them. */
export interface Room {
  used: number;
  limit: number;
}

/** What `GET /v1/usage` answers: stored files, uploads in progress, the limits, and per store. */
export interface OwnerUsage {
  bytes: number;
  files: number;
  reserved: Tally;
  quota: { bytes: number | null; files: number | null };
  stores: Record<string, Tally>;
}

/**
 * Per-owner quotas. Usage is not a counter kept beside the files but summed from their records
 * (see `usageOf`): a pending upload counts with the bytes it reserved, so a reservation lives
 * and dies with its pending record, and the sweeps that remove the records of crashed processes
 * release theirs too.
 *
 * - `reserve`: a new pending record is written only while the owner's usage lock is held and its
 *   usage, with the new record, is within the limits: concurrent uploads, on any instance, can't
 *   overshoot.
 * - `settle` (on publish): an upload that stored more than it reserved (its size unknown up
 *   front) is checked again under the lock, and refused if the owner would go past the limit.
 * - Deleting a record (any path through `Files`) releases its bytes.
 */
export class Quotas {
  readonly overrides: QuotaOverrides;

  constructor(
    private readonly db: CatalogDb,
    private readonly defaults: QuotaLimits,
  ) {
    this.overrides = new QuotaOverrides(db);
  }

  async limitsFor(owner: string, db: Kysely<Database> = this.db): Promise<QuotaLimits> {
    const own = await this.overrides.get(owner, db);
    return { bytes: own?.maxBytes ?? this.defaults.bytes, files: own?.maxFiles ?? this.defaults.files };
  }

  /**
   * Runs `write` (which creates one pending record reserving `bytes`) only if the owner's usage
   * with it stays within its limits; otherwise throws QuotaExceeded and nothing is written.
   * Resolves with what `write` returned and, under a byte limit, the bytes used (this reservation
   * included) and the limit.
   */
  async reserve<T>(owner: string, bytes: number, write: (db: Kysely<Database>) => Promise<T>): Promise<{ result: T; room?: Room }> {
    const limits = await this.limitsFor(owner);
    if (limits.bytes === undefined && limits.files === undefined) return { result: await write(this.db) };
    return this.db.transaction().execute(async (trx) => {
      await lockUsage(trx, owner);
      const used = await usageOf(trx, owner);
      if (limits.files !== undefined && used.files + 1 > limits.files) {
        throw new QuotaExceeded(`The upload would exceed the quota: ${used.files} of ${limits.files} files are used (uploads in progress included).`);
      }
      if (limits.bytes !== undefined && used.bytes + bytes > limits.bytes) {
        throw new QuotaExceeded(
          `The upload would exceed the quota: ${used.bytes} of ${limits.bytes} bytes are used (uploads in progress included), and it needs ${bytes} more.`,
        );
      }
      const result = await write(trx);
      return { result, room: limits.bytes === undefined ? undefined : { used: used.bytes + bytes, limit: limits.bytes } };
    });
  }

  /**
   * Runs `mark` (pending records to ready with their measured sizes, on `db`) and checks the
   * owner stays within its byte limit when the files came out larger than they reserved: then
   * under the usage lock, in a transaction (the caller's, or one of its own), which a refusal
   * rolls back with QuotaExceeded. Files within their reservations are never refused.
   */
  async settle<T>(db: Kysely<Database>, owner: string, items: { id: string; size: number; reserved?: number }[], mark: (db: Kysely<Database>) => Promise<T>): Promise<T> {
    const size = items.reduce((sum, i) => sum + i.size, 0);
    // Reservations the caller knows (a request's Content-Length) need no query, and files within them no limits.
    const known = items.every((i) => i.reserved !== undefined) ? items.reduce((sum, i) => sum + i.reserved!, 0) : undefined;
    if (known !== undefined && size <= known) return mark(db);
    const limits = await this.limitsFor(owner, db);
    if (limits.bytes === undefined) return mark(db);
    const growth = size - (known ?? (await reservedBytes(db, items.map((i) => i.id))));
    if (growth <= 0) return mark(db);
    const limit = limits.bytes;
    const check = async (trx: Kysely<Database>) => {
      await lockUsage(trx, owner);
      const result = await mark(trx);
      const used = await usageOf(trx, owner);
      if (used.bytes > limit) {
        throw new QuotaExceeded(`The upload would exceed the quota: with it, ${used.bytes} bytes of ${limit} would be used (uploads in progress included).`);
      }
      return result;
    };
    return db.isTransaction ? check(db) : db.transaction().execute(check);
  }

  /** An owner's usage: stored files per store and in all, uploads in progress, and its limits. */
  async usage(owner: string): Promise<OwnerUsage> {
    const [rows, limits] = await Promise.all([usageByStore(this.db, owner), this.limitsFor(owner)]);
    return { ...summarize(rows), quota: { bytes: limits.bytes ?? null, files: limits.files ?? null } };
  }

  /** Every owner's usage (or one's), for the operator. */
  async usageByOwner(owner?: string): Promise<(OwnerUsage & { owner: string })[]> {
    const rows = await usageByStore(this.db, owner);
    const owners = owner === undefined ? [...new Set(rows.map((r) => r.owner))] : [owner];
    return Promise.all(
      owners.map(async (o) => {
        const limits = await this.limitsFor(o);
        return { owner: o, ...summarize(rows.filter((r) => r.owner === o)), quota: { bytes: limits.bytes ?? null, files: limits.files ?? null } };
      }),
    );
  }
}

function summarize(rows: StoreUsage[]): Omit<OwnerUsage, 'quota'> {
  const stores: Record<string, Tally> = {};
  const total = { bytes: 0, files: 0 };
  const reserved = { bytes: 0, files: 0 };
  for (const row of rows) {
    if (row.stored.files > 0) stores[row.store] = { ...row.stored };
    total.bytes += row.stored.bytes;
    total.files += row.stored.files;
    reserved.bytes += row.reserved.bytes;
    reserved.files += row.reserved.files;
  }
  return { ...total, reserved, stores };
}

/**
 * Passes a stream of unknown length through while it fits in what the owner's quota leaves;
 * past it, fails with QuotaExceeded, so the store's atomic put keeps nothing.
 */
export function quotaMeter({ used, limit }: Room): Transform {
  const free = limit - used;
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done: TransformCallback) {
      seen += chunk.length;
      if (seen > free) {
        return done(new QuotaExceeded(`The upload would exceed the quota: ${used} of ${limit} bytes were used (uploads in progress included), and it is larger than the ${free} left.`));
      }
      done(null, chunk);
    },
  });
}
