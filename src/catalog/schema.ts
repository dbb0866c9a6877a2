import type { Generated } from 'kysely';

/** `expired`: past its `delete_at`, its bytes being removed by the expiry sweep (never readable again). */
export type FileStatus = 'pending' | 'ready' | 'missing' | 'failed' | 'expired';

/** Times are ISO-8601 UTC strings: they sort as text and read the same on SQLite and PostgreSQL. */
export interface FilesTable {
  id: string;
  owner: string;
  original_name: string;
  name: string;
  content_type: string;
  size: number;
  sha256: string | null;
  store: string;
  key: string;
  status: FileStatus;
  status_message: string | null;
  /** Set only on direct uploads: when a still `pending` one is swept (record and object). */
  expires_at: string | null;
  /** When the STORAGE_MIRROR store last received a verified copy of the blob; null: not mirrored. */
  mirrored_at: string | null;
  /** The Fly Machine (and its region) whose volume holds the blob; null when any instance can read it. */
  machine_id: string | null;
  region: string | null;
  /** The process writing a pending upload (`Instance.id`); null for direct uploads and records from before it was kept. */
  upload_instance: string | null;
  /** A direct upload in parts: the object store's multipart upload id, and the size of each part but the last. */
  multipart_upload_id: string | null;
  part_size: number | null;
  /** The lifetime asked for at upload, applied when the file is published (`delete_at`); null: none. */
  lifetime_ms: number | string | null;
  /** When a ready file expires (the API's `expiresAt`); null: kept until deleted. */
  delete_at: string | null;
  /** Custom metadata: a JSON object of strings; null: none. */
  metadata: string | null;
  created_at: string;
  updated_at: string;
}

/** One row per running process, refreshed by its heartbeat (see src/instance.ts). */
export interface InstancesTable {
  id: string;
  /** Host name, boot id and pid namespace: where `pid` can be checked. */
  host: string;
  pid: number;
  started_at: string;
  last_seen: string;
  /** Task slots its workers run (0: it runs none). */
  task_slots: Generated<number>;
  /** The Fly Machine whose pinned tasks its workers also take (placement only). */
  machine_id: string | null;
}

export type TaskStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

/** JSON columns are stored as text: portable between SQLite and PostgreSQL. */
export interface TasksTable {
  id: string;
  kind: string;
  owner: string;
  status: TaskStatus;
  progress: number;
  /** JSON: the task's input, as validated when it was queued. */
  payload: string;
  /** JSON: `{ at, message }[]`, lines meant for the user. Written only by the lease holder. */
  log: string;
  attempts: number;
  max_attempts: number;
  /** Not claimable before this time (retry backoff). */
  run_after: string;
  /** Lease: a running task whose worker hasn't extended this by then is claimed again. */
  running_until: string | null;
  worker_id: string | null;
  error_code: string | null;
  error_message: string | null;
  /** JSON: file ids of the outputs. */
  output_file_ids: string;
  /** Only a worker on this Fly Machine may run it (its input is on that volume); null: any worker. */
  machine_id: string | null;
  created_at: string;
  updated_at: string;
  finished_at: string | null;
}

export type KeyScope = 'read' | 'write' | 'service';

/** API keys: only a hash of each token is kept; the token itself is shown once, at creation. */
export interface ApiKeysTable {
  id: string;
  owner: string;
  scope: KeyScope;
  label: string | null;
  /** sha256 (hex) of the whole token. */
  token_hash: string;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
}

/** The sha256 state of a resumable upload after its first `hashed_bytes` bytes (src/uploads/tus/sha256-state.ts's saved state, base64). */
export interface TusHashesTable {
  file_id: string;
  hashed_bytes: number | string;
  state: string;
  updated_at: string;
}

/** Which process writes a resumable upload now, until when (renewed while it writes). */
export interface TusLocksTable {
  file_id: string;
  instance: string;
  expires_at: string;
}

/** An owner's own limits, set with `stowage quotas set`; null: the QUOTA_BYTES / QUOTA_FILES default. */
export interface QuotasTable {
  owner: string;
  max_bytes: number | null;
  max_files: number | null;
  updated_at: string;
}

/** A row per owner with a quota, locked by the transaction reserving room for one of its uploads. */
export interface UsageLocksTable {
  owner: string;
  locked_at: string;
}

/** An owner's webhook endpoint (`stowage webhooks add`). */
export interface WebhookEndpointsTable {
  id: string;
  owner: string;
  url: string;
  /** `whsec_...`: deliveries are signed with it. */
  secret: string;
  /** JSON: the event types it receives; null: every type. */
  events: string | null;
  created_at: string;
}

export interface Database {
  files: FilesTable;
  tasks: TasksTable;
  api_keys: ApiKeysTable;
  instances: InstancesTable;
  tus_hashes: TusHashesTable;
  tus_locks: TusLocksTable;
  quotas: QuotasTable;
  usage_locks: UsageLocksTable;
  webhook_endpoints: WebhookEndpointsTable;
  kysely_migration?: { name: string; timestamp: Generated<string> };
}
