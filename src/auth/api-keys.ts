import { createHash, randomBytes } from 'node:crypto';
import { compiledOnce } from '../catalog/compiled';
import type { CatalogDb } from '../catalog/database';
import type { Selectable } from 'kysely';
import type { ApiKeysTable } from '../catalog/schema';
import { Unauthorized } from '../errors';
import type { Principal, Scope } from './principal';

export type ApiKeyRecord = Selectable<ApiKeysTable>;

/** API key tokens start with this, so they can be told apart from JWTs and found by secret scanners. */
export const KEY_PREFIX = 'stw_';

/** A key used again within this long is not written back: a busy key costs no write per request. */
const LAST_USED_EVERY_MS = 60_000;

export interface CreatedKey {
  id: string;
  /** Shown once; only its hash is stored. */
  token: string;
  owner: string;
  scope: Scope;
  label: string | null;
  expiresAt: string | null;
}

const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');

/** Every request with a key asks for it: compiled once. */
const keyByHash = compiledOnce((db, hash: string) => db.selectFrom('api_keys').selectAll().where('token_hash', '=', hash));

/**
 * API keys for servers and scripts: `stw_` + 32 random bytes (base64url), sent as
 * `Authorization: Bearer <token>`. The catalog keeps a sha256 of each token, never the token, so
 * a leaked database can't be used to call stowage; 256 random bits need no slow hash.
 */
export class ApiKeys {
  private readonly touched = new Map<string, number>();

  constructor(private readonly db: CatalogDb) {}

  async create(input: { owner: string; scope: Scope; expiresAt?: Date; label?: string }): Promise<CreatedKey> {
    const id = `key_${randomBytes(8).toString('hex')}`;
    const token = `${KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
    const expiresAt = input.expiresAt?.toISOString() ?? null;
    await this.db
      .insertInto('api_keys')
      .values({
        id,
        owner: input.owner,
        scope: input.scope,
        label: input.label ?? null,
        token_hash: hashToken(token),
        created_at: new Date().toISOString(),
        expires_at: expiresAt,
        revoked_at: null,
        last_used_at: null,
      })
      .execute();
    return { id, token, owner: input.owner, scope: input.scope, label: input.label ?? null, expiresAt };
  }

  async list(owner?: string): Promise<ApiKeyRecord[]> {
    let query = this.db.selectFrom('api_keys').selectAll();
    if (owner !== undefined) query = query.where('owner', '=', owner);
    return query.orderBy('created_at').orderBy('id').execute();
  }

  /** Revokes a key for good; false when there is no such key (or it was already revoked). */
  async revoke(id: string): Promise<boolean> {
    const result = await this.db
      .updateTable('api_keys')
      .set({ revoked_at: new Date().toISOString() })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /** Whether any key that still works exists (dev mode is only for a service with none). */
  async anyActive(now = new Date()): Promise<boolean> {
    const row = await this.db
      .selectFrom('api_keys')
      .select('id')
      .where('revoked_at', 'is', null)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now.toISOString())]))
      .limit(1)
      .executeTakeFirst();
    return row !== undefined;
  }

  /** The principal a token proves, or Unauthorized with why not. */
  async verify(token: string, now = new Date()): Promise<Principal> {
    const [key] = (await keyByHash(this.db, hashToken(token))).rows;
    if (!key) throw new Unauthorized('The API key is not valid.', 'token_invalid');
    if (key.revoked_at !== null) throw new Unauthorized('The API key has been revoked.', 'token_revoked');
    if (key.expires_at !== null && key.expires_at <= now.toISOString()) throw new Unauthorized('The API key has expired.', 'token_expired');
    this.touch(key.id, now);
    return { owner: key.owner, scope: key.scope, via: 'api_key', id: key.id };
  }

  /** Records last use at most once a minute per key, in the background: a failed write never fails the request. */
  private touch(id: string, now: Date): void {
    const last = this.touched.get(id);
    if (last !== undefined && now.getTime() - last < LAST_USED_EVERY_MS) return;
    this.touched.set(id, now.getTime());
    this.db
      .updateTable('api_keys')
      .set({ last_used_at: now.toISOString() })
      .where('id', '=', id)
      .execute()
      .catch(() => this.touched.delete(id));
  }
}
