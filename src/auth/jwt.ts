import { createRemoteJWKSet, errors, type JWTPayload, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { JwtSettings } from '../config/auth';
import { AppError, Unauthorized } from '../errors';
import { OWNER } from '../http/owner';
import type { Principal, Scope } from './principal';

/** The host app's JWTs must expire; clocks may disagree by this much. */
const LEEWAY_S = 30;
/** A JWKS is kept this long before it is fetched again anyway. */
const JWKS_MAX_AGE_MS = 10 * 60_000;

/**
 * Verifies the host app's JWTs with `jose`: HS256 with AUTH_JWT_SECRET, or RS256/ES256/EdDSA
 * with the keys at AUTH_JWKS_URL (a `kid` not yet known fetches the set again, so the app can
 * rotate keys). `exp` is required; issuer and audience are checked when configured. The owner
 * is the `sub` claim (AUTH_JWT_OWNER_CLAIM); a `scope` claim with `read` but not `write` limits
 * the token to reading. A JWT never acts for another owner.
 */
export class JwtVerifier {
  private readonly key: Uint8Array | JWTVerifyGetKey;
  private readonly algorithms: string[];

  constructor(private readonly settings: JwtSettings) {
    if (settings.secret) {
      this.key = new TextEncoder().encode(settings.secret);
      this.algorithms = ['HS256'];
    } else {
      this.key = createRemoteJWKSet(new URL(settings.jwksUrl!), {
        timeoutDuration: settings.jwksTimeoutMs,
        cooldownDuration: settings.jwksRefetchMs,
        cacheMaxAge: JWKS_MAX_AGE_MS,
      });
      this.algorithms = ['RS256', 'ES256', 'EdDSA'];
    }
  }

  async verify(token: string): Promise<Principal> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.key as Uint8Array, {
        algorithms: this.algorithms,
        issuer: this.settings.issuer,
        audience: this.settings.audience,
        clockTolerance: LEEWAY_S,
        requiredClaims: ['exp'],
      }));
    } catch (err) {
      if (err instanceof errors.JWTExpired) throw new Unauthorized('The token has expired.', 'token_expired', { cause: err });
      // Anything but jose's verdict on the token (a refused connection, a timeout) is the JWKS being unreachable.
      if (err instanceof errors.JWKSTimeout || !(err instanceof errors.JOSEError)) {
        throw new AppError(503, 'auth_unavailable', 'The keys to verify this token could not be fetched (AUTH_JWKS_URL); try again shortly.', { cause: err });
      }
      throw new Unauthorized('The token is not valid.', 'token_invalid', { cause: err });
    }
    const owner = payload[this.settings.ownerClaim];
    if (typeof owner !== 'string' || !OWNER.test(owner)) {
      throw new Unauthorized(`The token's ${this.settings.ownerClaim} claim is not a valid owner name.`, 'token_invalid');
    }
    return { owner, scope: scopeOf(payload.scope), via: 'jwt', id: owner };
  }
}

/** No scope claim: the user's own read and write. OAuth-style space-separated (or an array). */
function scopeOf(claim: unknown): Scope {
  if (claim === undefined) return 'write';
  const words = Array.isArray(claim) ? claim.map(String) : String(claim).split(/\s+/);
  return words.some((w) => w === 'write' || w === 'stowage:write') ? 'write' : 'read';
}
