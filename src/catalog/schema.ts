import type { Generated } from 'kysely';

export type FileStatus = 'pending' | 'ready' | 'missing' | 'failed';

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
  created_at: string;
  updated_at: string;
}

export interface Database {
  files: FilesTable;
  kysely_migration?: { name: string; timestamp: Generated<string> };
}
