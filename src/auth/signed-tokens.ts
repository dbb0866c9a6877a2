import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * What a token is for. It is part of what is signed, so a token made for one purpose never
 * verifies as another (a download link is not a session cookie).
 */
export type TokenPurpose = 'download' | 'upload' | 'page' | 'session';

/** Longer tokens are refused before any work. */
const MAX_TOKEN_LENGTH = 4096;
/** `<payload>.<mac>`: base64url without padding; an HMAC-SHA256 is 43 such characters. */
const TOKEN = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/;

/** JSON with object keys sorted at every level (and undefined members left out): one text per value. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function mac(key: Buffer, purpose: TokenPurpose, payload: string): string {
  return createHmac('sha256', key).update(`stowage:${purpose}:v1:`).update(payload).digest('base64url');
}

/**
 * Signs and verifies the tokens of links and sessions: `base64url(canonical JSON payload)` `.`
 * `base64url(HMAC-SHA256(key, "stowage:<purpose>:v1:" + that payload text))`. New tokens are
 * signed with the first key (SECRET_KEY); tokens signed with any of the keys verify
 * (SECRET_KEY_PREVIOUS too), so the key can rotate without breaking links already handed out.
 * Every key is tried, compared in constant time.
 *
 * The payload is readable by whoever holds the token (it is signed, not encrypted): it carries
 * ids, an owner name, limits and an expiry, never a secret.
 */
export class Signer {
  private readonly keys: Buffer[];
  /** True when no SECRET_KEY was configured and a random key made at start-up signs instead. */
  readonly ephemeral: boolean;

  constructor(secretKeys: readonly string[]) {
    this.ephemeral = secretKeys.length === 0;
    const keys = this.ephemeral ? [randomBytes(32).toString('base64url')] : secretKeys;
    this.keys = keys.map((k) => Buffer.from(k, 'utf8'));
  }

  sign(purpose: TokenPurpose, payload: object): string {
    const body = Buffer.from(canonicalJson(payload), 'utf8').toString('base64url');
    return `${body}.${mac(this.keys[0], purpose, body)}`;
  }

  /** The payload of a token made by `sign` for `purpose` with one of the keys; undefined for anything else. */
  verify(purpose: TokenPurpose, token: string): unknown {
    if (token.length > MAX_TOKEN_LENGTH || !TOKEN.test(token)) return undefined;
    const dot = token.indexOf('.');
    const body = token.slice(0, dot);
    const given = Buffer.from(token.slice(dot + 1), 'utf8');
    let valid = false;
    // No early exit: the time taken doesn't say which key (if any) matched.
    for (const key of this.keys) {
      if (timingSafeEqual(Buffer.from(mac(key, purpose, body), 'utf8'), given)) valid = true;
    }
    if (!valid) return undefined;
    try {
      return JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as unknown;
    } catch {
      return undefined;
    }
  }
}
