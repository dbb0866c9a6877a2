import type { CatalogDb } from './database';
import { type FileRecord, type NewFile, type ReadyHook, pendingRecord } from './files';

export interface NewDirectUpload extends NewFile {
  /** Announced by the client; checked against the object at completion. */
  size: number;
  sha256?: string;
  expiresAt: Date;
}

/**
 * Records of direct uploads: a client PUTs the bytes straight to the bucket, so the record stays
 * `pending` (holding the announced size and sha256, and when it expires) until completion has
 * checked the object.
 */
export class DirectUploadCatalog {
  constructor(
    private readonly db: CatalogDb,
    private readonly onReady?: ReadyHook,
  ) {}

  async create(upload: NewDirectUpload): Promise<FileRecord> {
    // No machine_id or region: direct uploads go to a bucket, which every instance reads.
    const record = pendingRecord(upload, {
      size: upload.size,
      sha256: upload.sha256 ?? null,
      expires_at: upload.expiresAt.toISOString(),
    });
    await this.db.insertInto('files').values(record).execute();
    return record;
  }

  /** Pending to ready with the measured size and digest; false when it was no longer pending. */
  async markReady(id: string, measured: { size: number; sha256: string | null }): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const result = await trx
        .updateTable('files')
        .set({ status: 'ready', size: measured.size, sha256: measured.sha256, status_message: null, expires_at: null, updated_at: new Date().toISOString() })
        .where('id', '=', id)
        .where('status', '=', 'pending')
        .executeTakeFirst();
      if (result.numUpdatedRows !== 1n) return false;
      await this.onReady?.(trx, [id]);
      return true;
    });
  }

  /** Pending to failed, keeping the reason for the client to read. */
  async markFailed(id: string, reason: string): Promise<void> {
    await this.db
      .updateTable('files')
      .set({ status: 'failed', status_message: reason, expires_at: null, updated_at: new Date().toISOString() })
      .where('id', '=', id)
      .where('status', '=', 'pending')
      .execute();
  }

  /** Pending direct uploads whose time ran out before `now`, oldest first. */
  async expired(now: Date, limit: number): Promise<FileRecord[]> {
    return this.db
      .selectFrom('files')
      .selectAll()
      .where('status', '=', 'pending')
      .where('expires_at', 'is not', null)
      .where('expires_at', '<', now.toISOString())
      .orderBy('expires_at')
      .limit(limit)
      .execute();
  }

  async discardPending(id: string): Promise<void> {
    await this.db.deleteFrom('files').where('id', '=', id).where('status', '=', 'pending').execute();
  }
}
