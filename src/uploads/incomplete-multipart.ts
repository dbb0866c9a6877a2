import type { Logger } from 'pino';
import { StorePermissionMissing } from '../errors';
import type { Files } from '../files/files';
import { storeKeyFor } from '../files/names';
import type { IncompleteUpload, Store } from '../storage/store';
import type { StoreSet } from '../storage/store-set';

/** Uploads asked of a store per round trip: bounds memory. */
const PAGE = 200;

/** Where resumable (tus) uploads keep their multipart uploads in a bucket: `.tus/<file id>`. */
const TUS_DIR = '.tus/';

/** The store key of the pending record an incomplete upload writes: a resumable upload writes its file's. */
function recordKeyOf(key: string): string {
  return key.startsWith(TUS_DIR) ? storeKeyFor(key.slice(TUS_DIR.length)) : key;
}

/** An incomplete multipart upload that nothing will complete, in `store`. */
export interface AbandonedUpload {
  store: Store;
  upload: IncompleteUpload;
  reason: string;
}

/**
 * Incomplete multipart uploads (object stores) that no put will complete: those a failed put of
 * this process could not abort (the store was down), whatever their age; and those begun over
 * `graceMs` ago whose key no pending record points at (a resumable upload's, `.tus/<file id>`:
 * no pending record of that file). An upload in progress has a pending record
 * however long it takes; one whose process died loses that record to the interrupted-upload
 * sweep (or `doctor --fix`) first, and is then found here. A store whose keys may not list
 * multipart uploads (a policy from before stowage needed it) is skipped and passed to `denied`.
 */
export async function* findAbandonedUploads(
  deps: { stores: StoreSet; files: Files },
  graceMs: number,
  now = new Date(),
  denied: (store: Store, err: StorePermissionMissing) => void = () => undefined,
): AsyncGenerator<AbandonedUpload> {
  const startedBefore = new Date(now.getTime() - graceMs);
  for (const store of deps.stores.all()) {
    if (!store.listIncompleteUploads || !store.abortIncompleteUpload) continue;
    let cursor: string | undefined;
    do {
      let page;
      try {
        page = await store.listIncompleteUploads({ startedBefore, cursor, limit: PAGE });
      } catch (err) {
        if (!(err instanceof StorePermissionMissing)) throw err;
        denied(store, err);
        break;
      }
      const pending = await deps.files.pendingKeys(store.driver, page.items.map((u) => recordKeyOf(u.key)));
      for (const upload of page.items) {
        const begun = `begun ${upload.startedAt.toISOString()} with ${upload.bytes} bytes of parts`;
        if (upload.abandoned) yield { store, upload, reason: `${begun}; its upload failed and could not abort it while the store was unavailable` };
        else if (!pending.has(recordKeyOf(upload.key))) yield { store, upload, reason: `${begun}; no upload in progress writes it` };
      }
      cursor = page.cursor;
    } while (cursor);
  }
}

/** Stores whose missing permission has been logged: once per process, not at every sweep. */
const toldDenied = new WeakSet<Store>();

/** Aborts what `findAbandonedUploads` finds; failures are logged and retried next time. Returns how many were aborted. */
export async function sweepAbandonedUploads(deps: { stores: StoreSet; files: Files; log: Logger }, graceMs: number, now = new Date()): Promise<number> {
  let aborted = 0;
  const denied = (store: Store, err: StorePermissionMissing) => {
    if (toldDenied.has(store)) return;
    toldDenied.add(store);
    deps.log.warn({ store: store.driver, err }, `incomplete multipart uploads are not swept: the ${store.driver} keys need ${err.permission} (the bucket's AbortIncompleteMultipartUpload lifecycle rule still removes them)`);
  };
  for await (const { store, upload, reason } of findAbandonedUploads(deps, graceMs, now, denied)) {
    const fields = { event: 'incomplete_upload', store: store.driver, key: upload.key, uploadId: upload.uploadId, bytes: upload.bytes };
    try {
      await store.abortIncompleteUpload!(upload);
      aborted++;
      deps.log.info({ ...fields, outcome: 'aborted' }, `incomplete multipart upload aborted: ${reason}`);
    } catch (err) {
      deps.log.warn({ ...fields, err }, 'could not abort an incomplete multipart upload; will retry');
    }
  }
  return aborted;
}
