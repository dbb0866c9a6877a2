import type { Kysely } from 'kysely';
import type { Database } from './schema';

/** A resumable upload's sha256 state after its first `bytes` bytes. */
export interface HashProgress {
  bytes: number;
  state: Uint8Array;
}

/** Where resumable uploads keep their running sha256 (see src/uploads/tus/hashing.ts), by file id. */
export class TusHashes {
  constructor(private readonly db: Kysely<Database>) {}

  async get(fileId: string): Promise<HashProgress | undefined> {
    const row = await this.db.selectFrom('tus_hashes').select(['hashed_bytes', 'state']).where('file_id', '=', fileId).executeTakeFirst();
    return row && { bytes: Number(row.hashed_bytes), state: Buffer.from(row.state, 'base64') };
  }

  async save(fileId: string, progress: HashProgress): Promise<void> {
    const values = { hashed_bytes: progress.bytes, state: Buffer.from(progress.state).toString('base64'), updated_at: new Date().toISOString() };
    await this.db
      .insertInto('tus_hashes')
      .values({ file_id: fileId, ...values })
      .onConflict((oc) => oc.column('file_id').doUpdateSet(values))
      .execute();
  }

  async delete(fileId: string): Promise<void> {
    await this.db.deleteFrom('tus_hashes').where('file_id', '=', fileId).execute();
  }
}
