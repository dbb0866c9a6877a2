import { BlobNotFound } from '../errors';
import type { FileRecord } from '../catalog/files';
import type { FileStatus } from '../catalog/schema';
import { measure } from '../storage/sha256-meter';
import type { Store } from '../storage/store';
import { type DoctorDeps, type DoctorScope, filesInScope, PAGE_SIZE, type ProgressListener } from './context';
import { type FileProblem, recordProblem } from './report';

/** Blobs inspected at once: overlaps store round trips (S3 HEADs) without flooding the store. */
const CONCURRENCY = 8;

/** The sha256 of a blob, streamed through the hash so no blob is ever held whole. */
async function sha256Of(store: Store, key: string): Promise<string> {
  return (await measure(await store.get(key))).sha256;
}

/** Whether the mirror has a full-size copy of a record kept in another store. */
async function mirrorHolds(deps: DoctorDeps, record: FileRecord): Promise<boolean> {
  if (!deps.mirror || deps.mirror.driver === record.store) return false;
  return (await deps.mirror.head(record.key))?.size === Number(record.size);
}

async function inspect(deps: DoctorDeps, scope: DoctorScope, record: FileRecord): Promise<FileProblem | undefined> {
  const found = (kind: FileProblem['kind'], reason: string) => recordProblem(kind, record, reason);
  const store = deps.stores.find(record.store);
  if (!store) return found('unreachable', `its store "${record.store}" is not configured here`);
  const missing = async () => {
    if (await mirrorHolds(deps, record)) {
      return found('restorable', `the blob is not in the store; the ${deps.mirror!.driver} mirror holds a copy (a download or --fix restores it)`);
    }
    // Already marked (by a download, a report or an earlier --fix): the catalog says so already.
    return record.status === 'missing' ? undefined : found('missing', 'the blob is not in the store');
  };
  try {
    const info = await store.head(record.key);
    if (!info) return await missing();
    const size = Number(record.size);
    if (info.size !== size) return found('corrupt', `the blob has ${info.size} bytes, the record says ${size}`);
    if (scope.verify && record.sha256) {
      const digest = await sha256Of(store, record.key);
      if (digest !== record.sha256) return found('corrupt', `the blob's sha256 is ${digest}, the record says ${record.sha256}`);
    }
    return undefined;
  } catch (err) {
    if (err instanceof BlobNotFound) return await missing();
    return found('unreachable', `the store failed: ${(err as Error).message}`);
  }
}

async function inspectPage(deps: DoctorDeps, scope: DoctorScope, rows: FileRecord[]): Promise<(FileProblem | undefined)[]> {
  const results: (FileProblem | undefined)[] = new Array(rows.length);
  let next = 0;
  const worker = async () => {
    while (next < rows.length) {
      const i = next++;
      results[i] = await inspect(deps, scope, rows[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, rows.length) }, worker));
  return results;
}

/**
 * The records in scope that claim a blob (`ready`), and with a mirror the `missing` ones too: it
 * may hold their bytes. Without one a `missing` record has nothing left to find, and leaving it out
 * keeps "every checked record is missing" (an unmounted volume) true when it is.
 */
function recordsQuery(deps: DoctorDeps, scope: DoctorScope) {
  const statuses: FileStatus[] = deps.mirror ? ['ready', 'missing'] : ['ready'];
  return filesInScope(deps.db.selectFrom('files').where('status', 'in', statuses), deps, scope);
}

/**
 * Checks every record in scope against the store that holds it: is the blob there, is its size
 * right, and with `verify` its sha256. Pages through the catalog by (owner, created_at, id), the
 * columns of an existing index, so a catalog of any size is read a page at a time.
 */
export async function* checkRecords(deps: DoctorDeps, scope: DoctorScope, progress: ProgressListener): AsyncGenerator<FileProblem> {
  const { count } = await recordsQuery(deps, scope)
    .select((eb) => eb.fn.countAll<number>().as('count'))
    .executeTakeFirstOrThrow();
  const total = Number(count);
  let done = 0;
  progress({ phase: 'records', done, total });
  let after: FileRecord | undefined;
  for (;;) {
    let query = recordsQuery(deps, scope).selectAll();
    if (after) {
      const last = after;
      query = query.where((eb) => eb(eb.refTuple('owner', 'created_at', 'id'), '>', eb.tuple(last.owner, last.created_at, last.id)));
    }
    const rows = await query.orderBy('owner').orderBy('created_at').orderBy('id').limit(PAGE_SIZE).execute();
    for (const problem of await inspectPage(deps, scope, rows)) if (problem) yield problem;
    done += rows.length;
    progress({ phase: 'records', done, total: Math.max(total, done) });
    if (rows.length < PAGE_SIZE) return;
    after = rows[rows.length - 1];
  }
}
