import type { Request } from 'express';
import type { FileCatalog } from '../catalog/files';
import { NotFound } from '../errors';
import { deleteMirrorCopy } from '../mirror/delete';
import type { StoreSet } from '../storage/store-set';

/**
 * Deletes one of the requesting owner's files. The record goes first: once it is gone nobody can
 * be handed the blob, so a crash between the two steps leaves an orphan blob (which the doctor
 * finds), never a record without its file.
 */
export async function deleteOwnedFile(deps: { stores: StoreSet; catalog: FileCatalog }, req: Request, id: string): Promise<void> {
  const record = await deps.catalog.get(req.owner, id);
  if (!record) throw new NotFound('No file with that id.');
  // Resolved first: a record whose store is unreachable is kept rather than orphan its blob.
  const store = deps.stores.get(record.store);
  if (!(await deps.catalog.delete(req.owner, record.id))) throw new NotFound('No file with that id.');
  await store.delete(record.key).catch((err) => {
    req.log.error({ err, fileId: record.id, key: record.key }, 'record deleted but blob removal failed');
  });
  await deleteMirrorCopy(deps.stores, record, req.log);
}
