import { type Kysely, type Migration, type MigrationProvider, Migrator, sql } from 'kysely';
import type { Database } from './schema';

/**
 * Migrations live in code (not files on disk) so the compiled package carries them and they run
 * the same from `stowage migrate`, at startup, and in tests. Names sort in the order they apply.
 * Each one must stay valid SQL for both SQLite and PostgreSQL.
 */
const migrations: Record<string, Migration> = {
  '2026-11-23-001-files': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('files')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('owner', 'varchar(128)', (c) => c.notNull())
        .addColumn('original_name', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('content_type', 'varchar(255)', (c) => c.notNull())
        .addColumn('size', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('sha256', 'char(64)')
        .addColumn('store', 'varchar(32)', (c) => c.notNull())
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('status', 'varchar(16)', (c) => c.notNull())
        .addColumn('status_message', 'text')
        .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
        .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('files_owner_created')
        .on('files')
        .columns(['owner', 'created_at', 'id'])
        .execute();
      await db.schema.createIndex('files_status_updated').on('files').columns(['status', 'updated_at']).execute();
    },
    async down(db: Kysely<unknown>) {
      await sql`drop table files`.execute(db);
    },
  },
  // The doctor asks, a store listing page at a time, which keys have a record.
  '2026-11-23-002-files-store-key': {
    async up(db: Kysely<unknown>) {
      await db.schema.createIndex('files_store_key').on('files').columns(['store', 'key']).execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropIndex('files_store_key').execute();
    },
  },
  '2026-11-23-003-tasks': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('tasks')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('kind', 'varchar(64)', (c) => c.notNull())
        .addColumn('owner', 'varchar(128)', (c) => c.notNull())
        .addColumn('status', 'varchar(16)', (c) => c.notNull())
        .addColumn('progress', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('payload', 'text', (c) => c.notNull())
        .addColumn('log', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('max_attempts', 'integer', (c) => c.notNull())
        .addColumn('run_after', 'varchar(32)', (c) => c.notNull())
        .addColumn('running_until', 'varchar(32)')
        .addColumn('worker_id', 'varchar(128)')
        .addColumn('error_code', 'varchar(64)')
        .addColumn('error_message', 'text')
        .addColumn('output_file_ids', 'text', (c) => c.notNull())
        .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
        .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
        .addColumn('finished_at', 'varchar(32)')
        .execute();
      await db.schema.createIndex('tasks_claim').on('tasks').columns(['status', 'run_after']).execute();
      await db.schema.createIndex('tasks_owner_created').on('tasks').columns(['owner', 'created_at', 'id']).execute();
    },
    async down(db: Kysely<unknown>) {
      await sql`drop table tasks`.execute(db);
    },
  },
  '2026-11-24-001-direct-upload-expiry': {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('files').addColumn('expires_at', 'varchar(32)').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.alterTable('files').dropColumn('expires_at').execute();
    },
  },
  '2026-11-25-001-files-mirrored-at': {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('files').addColumn('mirrored_at', 'varchar(32)').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.alterTable('files').dropColumn('mirrored_at').execute();
    },
  },
  // Which Fly Machine (and region) holds a blob on a volume, so reads elsewhere can be replayed there.
  '2026-11-26-001-file-placement': {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('files').addColumn('machine_id', 'varchar(64)').execute();
      await db.schema.alterTable('files').addColumn('region', 'varchar(32)').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.alterTable('files').dropColumn('region').execute();
      await db.schema.alterTable('files').dropColumn('machine_id').execute();
    },
  },
  // A task whose input is on one Fly Machine's volume (a mirror copy) runs only on that Machine.
  '2026-11-30-001-task-placement': {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('tasks').addColumn('machine_id', 'varchar(64)').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.alterTable('tasks').dropColumn('machine_id').execute();
    },
  },
  '2026-12-01-001-api-keys': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('api_keys')
        .addColumn('id', 'varchar(32)', (c) => c.primaryKey())
        .addColumn('owner', 'varchar(128)', (c) => c.notNull())
        .addColumn('scope', 'varchar(16)', (c) => c.notNull())
        .addColumn('label', 'text')
        .addColumn('token_hash', 'char(64)', (c) => c.notNull().unique())
        .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
        .addColumn('expires_at', 'varchar(32)')
        .addColumn('revoked_at', 'varchar(32)')
        .addColumn('last_used_at', 'varchar(32)')
        .execute();
      await db.schema.createIndex('api_keys_owner').on('api_keys').columns(['owner', 'created_at']).execute();
    },
    async down(db: Kysely<unknown>) {
      await sql`drop table api_keys`.execute(db);
    },
  },
  // Who is alive (a heartbeat per process), and which process writes each pending upload: an
  // upload whose process is gone is swept, one whose process is alive never is.
  '2026-12-02-001-instances': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('instances')
        .addColumn('id', 'varchar(128)', (c) => c.primaryKey())
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('pid', 'integer', (c) => c.notNull())
        .addColumn('started_at', 'varchar(32)', (c) => c.notNull())
        .addColumn('last_seen', 'varchar(32)', (c) => c.notNull())
        .execute();
      await db.schema.alterTable('files').addColumn('upload_instance', 'varchar(128)').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.alterTable('files').dropColumn('upload_instance').execute();
      await sql`drop table instances`.execute(db);
    },
  },
  // Which processes run task workers, and for which Fly Machine's pinned tasks: a task queued
  // where no worker runs says so instead of waiting in silence.
  '2026-12-10-001-instance-task-slots': {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('instances').addColumn('task_slots', 'integer', (c) => c.notNull().defaultTo(0)).execute();
      await db.schema.alterTable('instances').addColumn('machine_id', 'varchar(64)').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.alterTable('instances').dropColumn('machine_id').execute();
      await db.schema.alterTable('instances').dropColumn('task_slots').execute();
    },
  },
  // A direct upload in parts (S3 multipart): the bucket's upload id and the part size the
  // client was given, so any instance can hand out part URLs, complete it or abort it.
  '2026-12-11-001-direct-multipart': {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('files').addColumn('multipart_upload_id', 'text').execute();
      await db.schema.alterTable('files').addColumn('part_size', 'bigint').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.alterTable('files').dropColumn('part_size').execute();
      await db.schema.alterTable('files').dropColumn('multipart_upload_id').execute();
    },
  },
  // A resumable (tus) upload's sha256 so far, saved with the offset it reached, so a resumed or
  // finished upload never reads again what it received; and which process is writing it (a
  // lease), so two instances never write one upload at once.
  '2026-12-11-002-tus': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('tus_hashes')
        .addColumn('file_id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('hashed_bytes', 'bigint', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('tus_locks')
        .addColumn('file_id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('instance', 'varchar(128)', (c) => c.notNull())
        .addColumn('expires_at', 'varchar(32)', (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await sql`drop table tus_locks`.execute(db);
      await sql`drop table tus_hashes`.execute(db);
    },
  },
  // A ready file's lifetime (`expiresAt` in the API), apart from `expires_at` (when a still
  // pending direct or tus upload is swept): the lifetime asked at upload waits in `lifetime_ms`
  // until the file is published, then `delete_at` = publish time + lifetime. Custom metadata too.
  '2026-12-12-001-file-expiry': {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('files').addColumn('lifetime_ms', 'bigint').execute();
      await db.schema.alterTable('files').addColumn('delete_at', 'varchar(32)').execute();
      await db.schema.alterTable('files').addColumn('metadata', 'text').execute();
      await db.schema.createIndex('files_status_delete_at').on('files').columns(['status', 'delete_at']).execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropIndex('files_status_delete_at').execute();
      await db.schema.alterTable('files').dropColumn('metadata').execute();
      await db.schema.alterTable('files').dropColumn('delete_at').execute();
      await db.schema.alterTable('files').dropColumn('lifetime_ms').execute();
    },
  },
  // Per-owner quotas set by the operator (null: the QUOTA_* default), and one row per owner
  // whose uploads take it in turn (locked while one reserves), so concurrent uploads on any
  // instance can't overshoot. Usage itself is summed from `files` (the index covers the sum).
  '2026-12-12-002-quotas': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('quotas')
        .addColumn('owner', 'varchar(128)', (c) => c.primaryKey())
        .addColumn('max_bytes', 'bigint')
        .addColumn('max_files', 'bigint')
        .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('usage_locks')
        .addColumn('owner', 'varchar(128)', (c) => c.primaryKey())
        .addColumn('locked_at', 'varchar(32)', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('files_owner_status').on('files').columns(['owner', 'status', 'store', 'size']).execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropIndex('files_owner_status').execute();
      await sql`drop table usage_locks`.execute(db);
      await sql`drop table quotas`.execute(db);
    },
  },
  // Webhook endpoints per owner (the operator's WEBHOOK_URL is configuration, not a row). The
  // secret is kept as given: signing needs it. Deliveries are tasks of kind `webhook`.
  '2026-12-12-003-webhooks': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('webhook_endpoints')
        .addColumn('id', 'varchar(32)', (c) => c.primaryKey())
        .addColumn('owner', 'varchar(128)', (c) => c.notNull())
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('secret', 'text', (c) => c.notNull())
        .addColumn('events', 'text')
        .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('webhook_endpoints_owner').on('webhook_endpoints').columns(['owner']).execute();
      await db.schema.createIndex('tasks_kind_owner_created').on('tasks').columns(['kind', 'owner', 'created_at', 'id']).execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropIndex('tasks_kind_owner_created').execute();
      await sql`drop table webhook_endpoints`.execute(db);
    },
  },
};

const provider: MigrationProvider = { getMigrations: async () => migrations };

export interface MigrationOutcome {
  applied: string[];
}

/** Brings the schema up to date; a no-op when it already is. */
export async function migrateToLatest(db: Kysely<Database>): Promise<MigrationOutcome> {
  const migrator = new Migrator({ db, provider });
  const { error, results = [] } = await migrator.migrateToLatest();
  if (error) throw new Error('Database migration failed', { cause: error });
  return { applied: results.filter((r) => r.status === 'Success').map((r) => r.migrationName) };
}
