import type { Kysely } from 'kysely';
import type { Database } from './schema';

/** Leases on resumable uploads, one writer process at a time across every instance sharing the catalog. */
export class TusLocks {
  constructor(private readonly db: Kysely<Database>) {}

  /**
   * Takes (or renews) the lease on `fileId` for `instance` until `now + leaseMs`, when it is free,
   * expired, already this instance's, or held by `replacing` (a process known to be gone).
   * Resolves with the holder afterwards: `instance` when taken.
   */
  async take(fileId: string, instance: string, leaseMs: number, options: { replacing?: string; now?: Date } = {}): Promise<string> {
    const now = options.now ?? new Date();
    const expires_at = new Date(now.getTime() + leaseMs).toISOString();
    await this.db
      .insertInto('tus_locks')
      .values({ file_id: fileId, instance, expires_at })
      .onConflict((oc) =>
        oc
          .column('file_id')
          .doUpdateSet({ instance, expires_at })
          .where((eb) =>
            eb.or([
              eb('tus_locks.instance', '=', instance),
              eb('tus_locks.expires_at', '<', now.toISOString()),
              ...(options.replacing ? [eb('tus_locks.instance', '=', options.replacing)] : []),
            ]),
          ),
      )
      .execute();
    const row = await this.db.selectFrom('tus_locks').select('instance').where('file_id', '=', fileId).executeTakeFirst();
    return row?.instance ?? '';
  }

  async release(fileId: string, instance: string): Promise<void> {
    await this.db.deleteFrom('tus_locks').where('file_id', '=', fileId).where('instance', '=', instance).execute();
  }

  /** Drops whatever lease an upload that is gone for good still has (a killed writer's). */
  async forget(fileId: string): Promise<void> {
    await this.db.deleteFrom('tus_locks').where('file_id', '=', fileId).execute();
  }
}
