import { timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';
import { Unauthorized } from '../errors';
import { type ApiKeys, KEY_PREFIX } from './api-keys';
import type { JwtVerifier } from './jwt';
import type { Principal } from './principal';

/** Reads a page session (a signed cookie) off a request; undefined when there is none or it doesn't verify. */
export interface SessionReader {
  principalFrom(req: Request): Principal | undefined;
}

export interface AuthenticatorDeps {
  keys: ApiKeys;
  jwt?: JwtVerifier;
  sessions?: SessionReader;
  metricsToken?: string;
  /**
   * Loopback, no API keys and no JWT settings, decided at start-up: a request without credentials
   * acts as the one owner `local`.
   */
  devMode: boolean;
}

export const DEV_PRINCIPAL: Principal = { owner: 'local', scope: 'write', via: 'dev', id: 'local' };

const METRICS_PRINCIPAL: Principal = { owner: 'local', scope: 'read', via: 'metrics_token', id: 'METRICS_TOKEN' };

function sameSecret(given: string, wanted: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(wanted);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Who a request comes from: a bearer token (an API key `stw_...`, the host app's JWT, or
 * METRICS_TOKEN for `/metrics`), else a page session cookie, else the dev-mode owner on a
 * loopback-only server. Undefined when the request carries nothing; Unauthorized (with the
 * reason's code) when what it carries doesn't prove anything.
 */
export class Authenticator {
  constructor(readonly deps: AuthenticatorDeps) {}

  get devMode(): boolean {
    return this.deps.devMode;
  }

  async principal(req: Request, options: { metrics?: boolean } = {}): Promise<Principal | undefined> {
    const header = req.get('authorization');
    if (header !== undefined) {
      const token = /^Bearer +(\S+)\s*$/i.exec(header)?.[1];
      if (!token) throw new Unauthorized('Send credentials as Authorization: Bearer <token>.', 'token_invalid');
      if (options.metrics && this.deps.metricsToken !== undefined && sameSecret(token, this.deps.metricsToken)) return METRICS_PRINCIPAL;
      if (token.startsWith(KEY_PREFIX)) return this.deps.keys.verify(token);
      if (this.deps.jwt && token.split('.').length === 3) return this.deps.jwt.verify(token);
      throw new Unauthorized('The token is not an API key stowage knows or a JWT it accepts.', 'token_invalid');
    }
    return this.deps.sessions?.principalFrom(req) ?? (this.deps.devMode ? DEV_PRINCIPAL : undefined);
  }
}
