import type { Kysely, Selectable } from 'kysely';
import { BadRequest } from '../errors';
import type { Placement } from '../config-fly';
import type { CatalogDb } from './database';
import type { Database, FileStatus, FilesTable } from './schema';

export type FileRecord = Selectable<FilesTable>;

export interface NewFile {
  id: string;
  owner: string;
  originalName: string;
  name: string;
  contentType: string;
  store: string;
  key: string;
}

export interface FilePage {
  files: FileRecord[];
  nextCursor?: string;
}

export interface StoredBlob {
  id: string;
  size: number;
  sha256: string;
}

/**
 * Marks pending records ready with their measured size and digest. Runs on whatever executor it
 * is given, so callers can make it part of a larger transaction (a task's completion).
 */
export async function markFilesReady(db: Kysely<Database>, owner: string, items: StoredBlob[]): Promise<void> {
  const now = new Date().toISOString();
  for (const item of items) {
    const result = await db
      .updateTable('files')
      .set({ status: 'ready', size: item.size, sha256: item.sha256, status_message: null, updated_at: now })
      .where('id', '=', item.id)
      .where('owner', '=', owner)
      .where('status', '=', 'pending')
      .executeTakeFirst();
    if (result.numUpdatedRows !== 1n) throw new Error(`File ${item.id} is no longer pending`);
  }
}

function encodeCursor(record: FileRecord): string {
  return Buffer.from(`${record.created_at}|${record.id}`).toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: string; id: string } {
  const [createdAt, id] = Buffer.from(cursor, 'base64url').toString().split('|');
  if (!createdAt || !id) throw new BadRequest('The cursor is not one this API returned.', 'invalid_cursor');
  return { createdAt, id };
}

/**
 * File records. Every read and write a client can cause is scoped to an owner, so access control
 * can later replace the X-Owner header without touching queries. The upload lifecycle keeps the
 * invariant that a `ready` record always has its blob: a record is created `pending` before its
 * bytes are stored and only marked `ready` after the store has them.
 */
export class FileCatalog {
  /** `placement`: this process's Machine, recorded on files it stores on its volume. */
  constructor(
    private readonly db: CatalogDb,
    private readonly placement?: Placement,
  ) {}

  async createPending(file: NewFile): Promise<FileRecord> {
    const now = new Date().toISOString();
    const record: FileRecord = {
      id: file.id,
      owner: file.owner,
      original_name: file.originalName,
      name: file.name,
      content_type: file.contentType,
      size: 0,
      sha256: null,
      store: file.store,
      key: file.key,
      status: 'pending',
      status_message: null,
      expires_at: null,
      machine_id: this.placement && file.store === 'volume' ? this.placement.machineId : null,
      region: this.placement && file.store === 'volume' ? this.placement.region : null,
      created_at: now,
      updated_at: now,
    };
    await this.db.insertInto('files').values(record).execute();
    return record;
  }

  /** Marks pending uploads ready with their measured size and digest, all or none. */
  async markReady(owner: string, items: StoredBlob[]): Promise<void> {
    await this.db.transaction().execute((trx) => markFilesReady(trx, owner, items));
  }

  async setStatus(id: string, status: FileStatus, message: string | null): Promise<void> {
    await this.db
      .updateTable('files')
      .set({ status, status_message: message, updated_at: new Date().toISOString() })
      .where('id', '=', id)
      .execute();
  }

  /** The owner's records with these ids, in no particular order. */
  async getMany(owner: string, ids: string[]): Promise<FileRecord[]> {
    if (ids.length === 0) return [];
    return this.db.selectFrom('files').selectAll().where('owner', '=', owner).where('id', 'in', ids).execute();
  }

  async get(owner: string, id: string): Promise<FileRecord | undefined> {
    return this.db.selectFrom('files').selectAll().where('id', '=', id).where('owner', '=', owner).executeTakeFirst();
  }

  /** The owner's files, newest first, `limit` at a time. */
  async list(owner: string, { limit, cursor }: { limit: number; cursor?: string }): Promise<FilePage> {
    let query = this.db.selectFrom('files').selectAll().where('owner', '=', owner);
    if (cursor) {
      const after = decodeCursor(cursor);
      query = query.where((eb) =>
        eb.or([
          eb('created_at', '<', after.createdAt),
          eb.and([eb('created_at', '=', after.createdAt), eb('id', '<', after.id)]),
        ]),
      );
    }
    const rows = await query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit + 1).execute();
    const files = rows.slice(0, limit);
    return { files, nextCursor: rows.length > limit ? encodeCursor(files[files.length - 1]) : undefined };
  }

  /** Deletes the owner's record; false when there was none. */
  async delete(owner: string, id: string): Promise<boolean> {
    const result = await this.db.deleteFrom('files').where('id', '=', id).where('owner', '=', owner).executeTakeFirst();
    return result.numDeletedRows > 0n;
  }

  /** Removes a record that never became ready (a failed or aborted upload). */
  async discardPending(id: string): Promise<void> {
    await this.db.deleteFrom('files').where('id', '=', id).where('status', '=', 'pending').execute();
  }
}
