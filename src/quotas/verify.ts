import type { CatalogDb } from '../catalog/database';
import type { Placement } from '../catalog/placement';
import { claimedKeys, countedRecords } from '../catalog/usage';
import type { StoreSet } from '../storage/store-set';

/** A difference between what the catalog counts and what a store holds. */
export type UsageDifference =
  | { kind: 'missing_blob'; owner: string; id: string; store: string; key: string; catalogBytes: number }
  | { kind: 'size_mismatch'; owner: string; id: string; store: string; key: string; catalogBytes: number; storeBytes: number }
  | { kind: 'unclaimed_blob'; store: string; key: string; storeBytes: number };

export interface UsageVerification {
  differences: UsageDifference[];
  /** Records not checked: their blob is on another Fly Machine's volume. */
  elsewhere: number;
  checked: number;
}

const PAGE = 500;
/** Blobs this young may be an upload's between its bytes and its record, or a delete's between its record and its bytes. */
const UNCLAIMED_GRACE_MS = 60_000;

/**
 * Compares the catalog's figures with the stores: each stored file's blob is asked for (head) in
 * its store, missing or of another size; and, for all owners, each store is listed for blobs no
 * record claims (bytes counted nowhere). Reads only.
 */
export async function verifyUsage(deps: { db: CatalogDb; stores: StoreSet; placement?: Placement }, owner?: string, now = new Date()): Promise<UsageVerification> {
  const differences: UsageDifference[] = [];
  let elsewhere = 0;
  let checked = 0;
  const here = deps.placement?.machineId;
  for (let after: string | undefined; ; ) {
    const records = await countedRecords(deps.db, { owner, after, limit: PAGE });
    if (records.length === 0) break;
    after = records[records.length - 1].id;
    for (const r of records) {
      if (here && r.machine_id && r.machine_id !== here) {
        elsewhere++;
        continue;
      }
      checked++;
      const blob = await deps.stores.get(r.store).head(r.key);
      const where = { owner: r.owner, id: r.id, store: r.store, key: r.key, catalogBytes: r.size };
      if (!blob) differences.push({ kind: 'missing_blob', ...where });
      else if (blob.size !== r.size) differences.push({ kind: 'size_mismatch', ...where, storeBytes: blob.size });
    }
  }
  // Blobs without a record belong to no owner: looked for only when all owners are counted.
  if (owner === undefined) {
    const cutoff = now.getTime() - UNCLAIMED_GRACE_MS;
    for (const store of deps.stores.all()) {
      const isMirror = store === deps.stores.mirror;
      for (let cursor: string | undefined, first = true; first || cursor; first = false) {
        const page = await store.list({ cursor, limit: PAGE });
        // The mirror keeps copies of records of every store, under their keys.
        const claimed = await claimedKeys(deps.db, page.items.map((b) => b.key), isMirror ? undefined : store.driver);
        for (const blob of page.items) {
          if (!claimed.has(blob.key) && blob.modifiedAt.getTime() <= cutoff) differences.push({ kind: 'unclaimed_blob', store: store.driver, key: blob.key, storeBytes: blob.size });
        }
        cursor = page.cursor;
      }
    }
  }
  return { differences, elsewhere, checked };
}
