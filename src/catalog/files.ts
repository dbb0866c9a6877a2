import type { Kysely, Selectable } from 'kysely';
import { compiledOnce } from './compiled';
import { decodeCursor, encodeCursor } from './cursor';
import type { Placement } from './placement';
import type { CatalogDb } from './database';
import type { Database, FileStatus, FilesTable } from './schema';

export type FileRecord = Selectable<FilesTable>;

const XLSX_TYPE = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';

export interface NewFile {
  id: string;
  owner: string;
  originalName: string;
  name: string;
  contentType: string;
  store: string;
  key: string;
}

/** A new `pending` record; `extra` sets what a kind of upload knows beyond the file's names. */
export function pendingRecord(
  file: NewFile,
  extra: Partial<Pick<FileRecord, 'size' | 'sha256' | 'expires_at' | 'machine_id' | 'region' | 'upload_instance' | 'part_size' | 'lifetime_ms'>> = {},
): FileRecord {
  const now = new Date().toISOString();
  return {
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
    mirrored_at: null,
    machine_id: null,
    region: null,
    upload_instance: null,
    multipart_upload_id: null,
    part_size: null,
    lifetime_ms: null,
    delete_at: null,
    metadata: null,
    created_at: now,
    updated_at: now,
    ...extra,
  };
}

/** Every column of a file record, in the order the compiled insert takes them. */
const FILE_COLUMNS = Object.keys(pendingRecord({ id: '', owner: '', originalName: '', name: '', contentType: '', store: '', key: '' })) as (keyof FileRecord)[];

/** The hot queries of uploads and downloads, compiled once (see compiledOnce). */
const insertFile = compiledOnce((db, ...values: unknown[]) => db.insertInto('files').values(Object.fromEntries(FILE_COLUMNS.map((c, i) => [c, values[i]])) as FileRecord));
const fileOf = compiledOnce((db, owner: string, id: string) => db.selectFrom('files').selectAll().where('id', '=', id).where('owner', '=', owner));
const markReady = compiledOnce((db, id: string, owner: string, size: number, sha256: string | null, now: string, deleteAt: string | null) =>
  db
    .updateTable('files')
    .set({ status: 'ready', size, sha256, status_message: null, expires_at: null, updated_at: now, delete_at: deleteAt, lifetime_ms: null })
    .where('id', '=', id)
    .where('owner', '=', owner)
    .where('status', '=', 'pending'),
);

/** A pending upload and the row of the process writing it, when it has one. */
export interface PendingUpload {
  record: FileRecord;
  writer?: { host: string; pid: number; last_seen: string };
}

export interface FilePage {
  files: FileRecord[];
  nextCursor?: string;
}

export interface StoredBlob {
  id: string;
  size: number;
  /** Null only for a direct upload completed without a digest. */
  sha256: string | null;
  /** When the caller knows them: the bytes its pending record reserved, and its `lifetime_ms` (read from the record otherwise). */
  reserved?: number;
  lifetimeMs?: number | null;
}

/**
 * Work that must be recorded together with files becoming ready (a mirror copy to make, webhook
 * deliveries): it runs on the executor of the transaction that publishes them, so a crash can't
 * keep one without the other.
 */
export type ReadyWork = (db: Kysely<Database>, fileIds: string[]) => Promise<void>;

/**
 * Looks up, on `db`, whether files of `owner` becoming ready need work recorded with them (the
 * owner's webhook endpoints, a mirror): that work, or undefined when there is none, so a lone
 * file can be published by a single statement.
 */
export type ReadyHook = (db: Kysely<Database>, owner: string) => Promise<ReadyWork | undefined>;

/**
 * Marks pending records ready with their measured size and digest, all or none (the caller's
 * executor decides: a transaction, or the database for one statement). Clears a direct upload's
 * expiry; a lifetime asked for at upload starts now (`delete_at`). Resolves with the records' new
 * `updated_at`; throws if one was no longer pending. An item whose `lifetimeMs` the caller knows
 * takes one statement; otherwise a lifetime found on the record takes a second.
 */
export async function markFilesReady(db: Kysely<Database>, owner: string, items: StoredBlob[]): Promise<string> {
  const now = new Date().toISOString();
  for (const item of items) {
    if (item.lifetimeMs !== undefined) {
      const deleteAt = item.lifetimeMs === null ? null : new Date(Date.parse(now) + item.lifetimeMs).toISOString();
      const result = await markReady(db, item.id, owner, item.size, item.sha256, now, deleteAt);
      if (!result.numAffectedRows) throw new NotPending(item.id);
      continue;
    }
    const row = await db
      .updateTable('files')
      .set({ status: 'ready', size: item.size, sha256: item.sha256, status_message: null, expires_at: null, updated_at: now })
      .where('id', '=', item.id)
      .where('owner', '=', owner)
      .where('status', '=', 'pending')
      .returning('lifetime_ms')
      .executeTakeFirst();
    if (!row) throw new NotPending(item.id);
    if (row.lifetime_ms !== null) {
      const deleteAt = new Date(Date.parse(now) + Number(row.lifetime_ms)).toISOString();
      await db.updateTable('files').set({ delete_at: deleteAt, lifetime_ms: null }).where('id', '=', item.id).execute();
    }
  }
  return now;
}

/** What `PATCH /v1/files/:id` may change on a ready file. */
export type FileChanges = Partial<Pick<FileRecord, 'name' | 'original_name' | 'metadata' | 'delete_at'>>;

/** Stored bytes and files per store (ready files), from one aggregate query. */
export type StoreTotals = Record<string, { files: number; bytes: number }>;

/** A record that publishing expected to be pending was not (deleted, failed or already ready). */
export class NotPending extends Error {
  constructor(readonly fileId: string) {
    super(`File ${fileId} is no longer pending`);
    this.name = 'NotPending';
  }
}

/** Deletes a record, only if it still has the status the caller saw (when given): the record deleted, or undefined. */
export function deleteFileRecord(db: Kysely<Database>, match: { id: string; owner?: string; status?: FileStatus }): Promise<FileRecord | undefined> {
  let query = db.deleteFrom('files').where('id', '=', match.id);
  if (match.owner !== undefined) query = query.where('owner', '=', match.owner);
  if (match.status !== undefined) query = query.where('status', '=', match.status);
  return query.returningAll().executeTakeFirst();
}

/** Marks a record `missing` if it still has the status the caller saw: the record as it now is, or undefined. */
export function markFileMissing(db: Kysely<Database>, id: string, ifStatus: FileStatus, message: string): Promise<FileRecord | undefined> {
  return db
    .updateTable('files')
    .set({ status: 'missing', status_message: message, updated_at: new Date().toISOString() })
    .where('id', '=', id)
    .where('status', '=', ifStatus)
    .returningAll()
    .executeTakeFirst();
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

  /**
   * A new `pending` record. Files on a volume remember this process's Machine; a direct upload
   * adds what its client announced (size, sha256) and when it expires. A pending record's `size`
   * is the bytes reserved for it against its owner's quota.
   */
  async createPending(
    file: NewFile,
    announced: Partial<Pick<FileRecord, 'size' | 'sha256' | 'expires_at' | 'upload_instance' | 'part_size' | 'lifetime_ms'>> = {},
    db: Kysely<Database> = this.db,
  ): Promise<FileRecord> {
    const placement = file.store === 'volume' ? this.placement : undefined;
    const record = pendingRecord(file, { machine_id: placement?.machineId ?? null, region: placement?.region ?? null, ...announced });
    await insertFile(db, ...FILE_COLUMNS.map((c) => record[c] ?? null));
    return record;
  }

  /** Records the multipart upload a pending direct upload writes through; false when it was no longer pending. */
  async setMultipartUpload(id: string, uploadId: string): Promise<boolean> {
    const result = await this.db.updateTable('files').set({ multipart_upload_id: uploadId }).where('id', '=', id).where('status', '=', 'pending').executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /** The lifetime pending files get once published; only while still pending. */
  async setLifetime(ids: string[], lifetimeMs: number): Promise<void> {
    if (ids.length === 0) return;
    await this.db.updateTable('files').set({ lifetime_ms: lifetimeMs }).where('id', 'in', ids).where('status', '=', 'pending').execute();
  }

  /** Moves a pending direct upload's expiry later (never earlier). */
  async extendExpiry(id: string, expiresAt: Date): Promise<void> {
    const at = expiresAt.toISOString();
    await this.db.updateTable('files').set({ expires_at: at }).where('id', '=', id).where('status', '=', 'pending').where('expires_at', '<', at).execute();
  }

  /** Pending to failed, keeping the reason for the client to read; false when it was no longer pending. */
  async markFailed(id: string, reason: string): Promise<boolean> {
    const result = await this.db
      .updateTable('files')
      .set({ status: 'failed', status_message: reason, expires_at: null, updated_at: new Date().toISOString() })
      .where('id', '=', id)
      .where('status', '=', 'pending')
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /** Pending direct uploads whose time ran out before `now`, oldest first. */
  async expiredPending(now: Date, limit: number): Promise<FileRecord[]> {
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

  /**
   * Pending uploads (not direct uploads, which expire) whose writing process may be dead, with
   * that process's row: written by another process that has no row, is on `host` (its pid can be
   * checked), or was last seen before `silentBefore`; or with no process recorded and idle since
   * before `idleBefore`. Only this Machine's (with placement): another Machine's volume is out of
   * reach. Oldest first.
   */
  async pendingUploadsToJudge(
    self: { id: string; host: string },
    cutoffs: { silentBefore: Date; idleBefore: Date },
    limit: number,
    only?: { createdAfter?: Date; owner?: string },
  ): Promise<PendingUpload[]> {
    const here = this.placement?.machineId;
    let query = this.db
      .selectFrom('files')
      .leftJoin('instances', 'instances.id', 'files.upload_instance')
      .selectAll('files')
      .select(['instances.host as writer_host', 'instances.pid as writer_pid', 'instances.last_seen as writer_last_seen'])
      .where('files.status', '=', 'pending')
      .where('files.expires_at', 'is', null)
      .where((eb) =>
        eb.or([
          eb.and([eb('files.upload_instance', 'is', null), eb('files.updated_at', '<', cutoffs.idleBefore.toISOString())]),
          eb.and([
            eb('files.upload_instance', '!=', self.id),
            eb.or([eb('instances.id', 'is', null), eb('instances.host', '=', self.host), eb('instances.last_seen', '<', cutoffs.silentBefore.toISOString())]),
          ]),
        ]),
      );
    if (here) query = query.where((eb) => eb.or([eb('files.machine_id', 'is', null), eb('files.machine_id', '=', here)]));
    if (only?.owner) query = query.where('files.owner', '=', only.owner);
    if (only?.createdAfter) query = query.where('files.created_at', '>=', only.createdAfter.toISOString());
    const rows = await query.orderBy('files.updated_at').orderBy('files.id').limit(limit).execute();
    return rows.map(({ writer_host, writer_pid, writer_last_seen, ...record }) => ({
      record,
      writer:
        writer_host === null || writer_pid === null || writer_last_seen === null
          ? undefined
          : { host: writer_host, pid: Number(writer_pid), last_seen: writer_last_seen },
    }));
  }

  /** Sets a record's status, only from `from` when given (an expired file never turns missing). */
  async setStatus(id: string, status: FileStatus, message: string | null, from?: FileStatus): Promise<void> {
    let query = this.db.updateTable('files').set({ status, status_message: message, updated_at: new Date().toISOString() }).where('id', '=', id);
    if (from) query = query.where('status', '=', from);
    await query.execute();
  }

  /** Records that the mirror holds a verified copy of the blob; false when the record is gone. */
  async markMirrored(id: string, key: string): Promise<boolean> {
    const result = await this.db
      .updateTable('files')
      .set({ mirrored_at: new Date().toISOString() })
      .where('id', '=', id)
      .where('key', '=', key)
      .executeTakeFirst();
    return result.numUpdatedRows === 1n;
  }

  /** The owner's records with these ids, in no particular order. */
  async getMany(owner: string, ids: string[]): Promise<FileRecord[]> {
    if (ids.length === 0) return [];
    return this.db.selectFrom('files').selectAll().where('owner', '=', owner).where('id', 'in', ids).execute();
  }

  async get(owner: string, id: string): Promise<FileRecord | undefined> {
    return (await fileOf(this.db, owner, id)).rows[0];
  }

  /** Changes a ready file of the owner not past its `delete_at`; undefined when it has no such file. */
  async change(owner: string, id: string, changes: FileChanges): Promise<FileRecord | undefined> {
    const now = new Date().toISOString();
    return this.db
      .updateTable('files')
      .set({ ...changes, updated_at: now })
      .where('id', '=', id)
      .where('owner', '=', owner)
      .where('status', '=', 'ready')
      .where((eb) => eb.or([eb('delete_at', 'is', null), eb('delete_at', '>', now)]))
      .returningAll()
      .executeTakeFirst();
  }

  /**
   * Ready files past their `delete_at` turn `expired`, at most `limit` of them, on `db` (the
   * sweep's transaction); resolves with them. Only this Machine's and unplaced ones (with placement).
   */
  async expireDue(db: Kysely<Database>, now: Date, limit: number): Promise<FileRecord[]> {
    const at = now.toISOString();
    const here = this.placement?.machineId;
    let due = db.selectFrom('files').select('id').where('status', '=', 'ready').where('delete_at', '<=', at);
    if (here) due = due.where((eb) => eb.or([eb('machine_id', 'is', null), eb('machine_id', '=', here)]));
    const ids = due.orderBy('delete_at').limit(limit);
    // The conditions again: a PATCH that moved delete_at meanwhile wins.
    return db
      .updateTable('files')
      .set({ status: 'expired', updated_at: at })
      .where('id', 'in', ids)
      .where('status', '=', 'ready')
      .where('delete_at', '<=', at)
      .returningAll()
      .execute();
  }

  /** Expired records whose bytes (and then records) are still to go, oldest first; only this Machine's and unplaced ones. */
  async expired(limit: number): Promise<FileRecord[]> {
    const here = this.placement?.machineId;
    let query = this.db.selectFrom('files').selectAll().where('status', '=', 'expired');
    if (here) query = query.where((eb) => eb.or([eb('machine_id', 'is', null), eb('machine_id', '=', here)]));
    return query.orderBy('delete_at').orderBy('id').limit(limit).execute();
  }

  /** Ready files and their bytes per store. */
  async storeTotals(): Promise<StoreTotals> {
    const rows = await this.db
      .selectFrom('files')
      .select((eb) => ['store', eb.fn.countAll().as('files'), eb.fn.sum('size').as('bytes')])
      .where('status', '=', 'ready')
      .groupBy('store')
      .execute();
    return Object.fromEntries(rows.map((r) => [r.store, { files: Number(r.files), bytes: Number(r.bytes ?? 0) }]));
  }

  /** The owner's files, newest first, `limit` at a time; expired ones (also those the sweep has yet to mark) are not listed. */
  async list(owner: string, { limit, cursor }: { limit: number; cursor?: string }): Promise<FilePage> {
    const now = new Date().toISOString();
    let query = this.db
      .selectFrom('files')
      .selectAll()
      .where('owner', '=', owner)
      .where('status', '!=', 'expired')
      .where((eb) => eb.or([eb('delete_at', 'is', null), eb('delete_at', '>', now)]));
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
    return { files, nextCursor: rows.length > limit ? encodeCursor({ createdAt: files[files.length - 1].created_at, id: files[files.length - 1].id }) : undefined };
  }

  /**
   * The owner's ready files a report can read (CSV or XLSX by type or by name), newest first.
   * Windows browsers label .csv files `application/vnd.ms-excel`, hence that type; the report
   * itself tells files apart by content and explains any it cannot read.
   */
  async listReportSources(owner: string, limit: number): Promise<FileRecord[]> {
    return this.db
      .selectFrom('files')
      .selectAll()
      .where('owner', '=', owner)
      .where('status', '=', 'ready')
      .where((eb) =>
        eb.or([
          eb('content_type', 'in', ['text/csv', 'application/csv', 'application/vnd.ms-excel', XLSX_TYPE]),
          eb('content_type', 'like', 'text/csv;%'),
          // SQLite's LIKE ignores ASCII case: Sales.CSV matches too.
          eb('name', 'like', '%.csv'),
          eb('name', 'like', '%.xlsx'),
        ]),
      )
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
  }

  /** Deletes a record, only if it still has the status the caller saw (when given); false when none was deleted. */
  async delete(match: { id: string; owner?: string; status?: FileStatus }): Promise<boolean> {
    let query = this.db.deleteFrom('files').where('id', '=', match.id);
    if (match.owner !== undefined) query = query.where('owner', '=', match.owner);
    if (match.status !== undefined) query = query.where('status', '=', match.status);
    const result = await query.executeTakeFirst();
    return result.numDeletedRows > 0n;
  }

  /** Which of `keys` in `store` a pending record points at: uploads still in progress (or interrupted, not yet swept). */
  async pendingKeys(store: string, keys: string[]): Promise<Set<string>> {
    if (keys.length === 0) return new Set();
    const rows = await this.db.selectFrom('files').select('key').where('store', '=', store).where('key', 'in', keys).where('status', '=', 'pending').execute();
    return new Set(rows.map((r) => r.key));
  }

  /** A record's status, whoever owns it; undefined when there is no such record. */
  async statusOf(id: string): Promise<FileStatus | undefined> {
    const row = await this.db.selectFrom('files').select('status').where('id', '=', id).executeTakeFirst();
    return row?.status;
  }

  /** Removes a record that never became ready (a failed or aborted upload). */
  async discardPending(id: string): Promise<void> {
    await this.db.deleteFrom('files').where('id', '=', id).where('status', '=', 'pending').execute();
  }
}
