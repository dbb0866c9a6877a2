import type { KeyScope } from '../catalog/schema';

/** `read` lists and downloads; `write` adds uploads, deletes and reports; `service` may also act for any owner. */
export type Scope = KeyScope;

export const SCOPES: readonly Scope[] = ['read', 'write', 'service'];

/** Who is calling, once proven: the owner whose files it acts on and what it may do. */
export interface Principal {
  owner: string;
  scope: Scope;
  /** How the caller proved it, for logs. */
  via: 'api_key' | 'jwt' | 'session' | 'dev' | 'metrics_token';
  /** What logs may name: the key id, the JWT subject, the session's owner; never a token. */
  id: string;
}

/** Whether `held` covers `needed` (read < write < service). */
export function allows(held: Scope, needed: Scope): boolean {
  return SCOPES.indexOf(held) >= SCOPES.indexOf(needed);
}
