import type { KeyScope } from '../catalog/schema';

/** `read` lists and downloads; `write` adds uploads, deletes and reports; `service` may also act for any owner. */
export type Scope = KeyScope;

export const SCOPES: readonly Scope[] = ['read', 'write', 'service'];

/**
 * What an upload link allows: files of at most `maxBytes` each, at most `maxFiles` per request,
 * of the `allowedTypes` (`image/png`, `image/*`; empty: whatever the server accepts). Within the
 * server's own limits, which always apply too.
 */
export interface UploadGrant {
  maxBytes: number;
  maxFiles: number;
  allowedTypes: string[];
  /** How long files uploaded through the link are kept (ms), whatever an upload asks; unset: as the upload asks. */
  lifetimeMs?: number;
}

/** Who is calling, once proven: the owner whose files it acts on and what it may do. */
export interface Principal {
  owner: string;
  scope: Scope;
  /** How the caller proved it, for logs. */
  via: 'api_key' | 'jwt' | 'session' | 'upload_link' | 'dev' | 'metrics_token';
  /** What logs may name: the key id, the JWT subject, the session's owner; never a token. */
  id: string;
  /**
   * Set for an upload link and the page session it starts: the caller may only upload, within
   * these limits (no listing, downloading or deleting the owner's files).
   */
  upload?: UploadGrant;
  /** When the session or link stops working (sessions: shown on the page). */
  expiresAt?: Date;
}

/** Whether `held` covers `needed` (read < write < service). */
export function allows(held: Scope, needed: Scope): boolean {
  return SCOPES.indexOf(held) >= SCOPES.indexOf(needed);
}
