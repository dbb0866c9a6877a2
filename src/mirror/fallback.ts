import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { FileCatalog, FileRecord } from '../catalog/files';
import { BlobNotFound } from '../errors';
import type { ByteRange, Store } from '../storage/store';
import type { StoreSet } from '../storage/store-set';
import { copyVerified } from './copy-blob';

/**
 * Read-repair for downloads. When a record's blob is gone from its store (a wiped /tmp, a lost
 * volume) and the mirror holds a complete copy, the client is served from the mirror straight
 * away, and the blob is copied back to its store in the background: a second read of the mirror,
 * verified by sha256 before the store publishes it. Serving doesn't wait for the copy (a large
 * file would outlast a router's first-byte timeout) and doesn't depend on it: a failed restore is
 * logged, the download goes on.
 */
export class MirrorFallback {
  /** Restores in flight by file id, so concurrent downloads of one file restore it once. */
  private readonly restoring = new Map<string, Promise<void>>();

  constructor(private readonly deps: { stores: StoreSet; catalog: FileCatalog }) {}

  /** The blob (or `range` of it) from the mirror, or undefined when the mirror has no full copy. */
  async open(record: FileRecord, range: ByteRange | undefined, log: Logger): Promise<Readable | undefined> {
    const mirror = await this.holder(record);
    if (!mirror) return undefined;
    let body: Readable;
    try {
      body = await mirror.get(record.key, range);
    } catch (err) {
      if (err instanceof BlobNotFound) return undefined;
      throw err;
    }
    this.fellBack(record, mirror, log);
    return body;
  }

  /** Whether the mirror has a full copy (for HEAD); starts the restore when it does. */
  async exists(record: FileRecord, log: Logger): Promise<boolean> {
    const mirror = await this.holder(record);
    if (mirror) this.fellBack(record, mirror, log);
    return mirror !== undefined;
  }

  /** Resolves once every restore started so far has finished (shutdown, tests). */
  async settled(): Promise<void> {
    await Promise.all(this.restoring.values());
  }

  private async holder(record: FileRecord): Promise<Store | undefined> {
    const mirror = this.deps.stores.mirror;
    if (!mirror || record.store === mirror.driver) return undefined;
    const info = await mirror.head(record.key);
    return info?.size === Number(record.size) ? mirror : undefined;
  }

  private fellBack(record: FileRecord, mirror: Store, log: Logger): void {
    log.warn({ event: 'mirror.fallback', fileId: record.id, store: record.store, key: record.key }, 'blob missing from its store: serving the mirror copy');
    if (this.restoring.has(record.id)) return;
    const work = this.restore(record, mirror, log).finally(() => this.restoring.delete(record.id));
    this.restoring.set(record.id, work);
  }

  private async restore(record: FileRecord, mirror: Store, log: Logger): Promise<void> {
    const fields = { event: 'mirror.restore', fileId: record.id, store: record.store, key: record.key };
    try {
      const target = this.deps.stores.get(record.store);
      const size = await copyVerified(mirror, target, record);
      // Deleted while it was being restored: the restored blob would belong to nobody.
      if (!(await this.deps.catalog.get(record.owner, record.id))) {
        await target.delete(record.key);
        log.info({ ...fields, outcome: 'discarded' }, 'file deleted during its restore; restored blob removed');
        return;
      }
      log.info({ ...fields, size, outcome: 'restored' }, 'blob restored from the mirror');
    } catch (err) {
      log.error({ ...fields, outcome: 'failed', err }, 'restoring the blob from the mirror failed');
    }
  }
}
