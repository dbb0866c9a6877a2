import { type DoctorDeps, type DoctorScope, PAGE_SIZE, type ProgressListener } from './context';
import type { FileProblem } from './report';

/** Which of `keys` in `store` some record (of any status) points at. */
export async function keysWithRecords(deps: DoctorDeps, store: string, keys: string[]): Promise<Set<string>> {
  if (keys.length === 0) return new Set();
  let query = deps.db.selectFrom('files').select('key').where('key', 'in', keys);
  // The mirror holds copies of records kept in other stores, under the same keys.
  if (deps.mirror?.driver !== store) query = query.where('store', '=', store);
  const rows = await query.execute();
  return new Set(rows.map((r) => r.key));
}

/**
 * Blobs no record points at. Walks each store one listing page at a time and asks the catalog
 * which of that page's keys it knows, so neither side is ever held whole. Blobs younger than the
 * grace period are skipped: an upload writes its blob before its record turns ready, and a
 * pending record already counts as "known", so in-flight uploads are never flagged.
 */
export async function* checkOrphans(deps: DoctorDeps, scope: DoctorScope, now: Date, progress: ProgressListener): AsyncGenerator<FileProblem> {
  const cutoff = now.getTime() - scope.graceMs;
  let done = 0;
  for (const store of deps.stores.all()) {
    const name = store.driver;
    let cursor: string | undefined;
    do {
      const page = await store.list({ cursor, limit: PAGE_SIZE });
      const known = await keysWithRecords(deps, name, page.items.map((b) => b.key));
      for (const blob of page.items) {
        const modified = blob.modifiedAt.getTime();
        if (known.has(blob.key) || modified > cutoff) continue;
        if (scope.since && modified < scope.since.getTime()) continue;
        yield {
          kind: 'orphan',
          store: name,
          key: blob.key,
          reason: `no record points at this blob (${blob.size} bytes, modified ${blob.modifiedAt.toISOString()})`,
        };
      }
      done += page.items.length;
      progress({ phase: 'blobs', done });
      cursor = page.cursor;
    } while (cursor);
  }
}
