import type { Request, Response } from 'express';
import type { SessionReader } from './authenticator';
import type { Links } from './links';
import type { Principal, UploadGrant } from './principal';

/** The page session's cookie. */
export const SESSION_COOKIE = 'stowage_session';

/** The value of one cookie of the request's Cookie header (undefined when absent). */
export function cookieValue(req: Request, name: string): string | undefined {
  const header = req.get('cookie');
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * Page sessions: a cookie `stowage_session` holding a token signed with SECRET_KEY (see
 * Links.session) that names the owner, the scope (write), the expiry and, for a session opened
 * from an upload link, that link's limits. Nothing is stored on the server: the cookie is the
 * session, and it ends at its expiry (or when SECRET_KEY rotates past it).
 *
 * The cookie is `HttpOnly` (page scripts can't read it), `SameSite=Strict` (browsers don't send it
 * with requests another site starts) and `Secure` over https. Because the cookie is credentials
 * for the JSON API too, the guard also refuses an unsafe request it authenticates unless it comes
 * from this origin (see guard.ts).
 */
export class Sessions implements SessionReader {
  constructor(private readonly links: Links) {}

  /** Whether the request carries a session cookie at all (valid or not): the page says "ended" then. */
  sent(req: Request): boolean {
    return cookieValue(req, SESSION_COOKIE) !== undefined;
  }

  principalFrom(req: Request): Principal | undefined {
    const token = cookieValue(req, SESSION_COOKIE);
    const session = token === undefined ? undefined : this.links.readSession(token);
    if (!session) return undefined;
    return { owner: session.owner, scope: 'write', via: 'session', id: session.owner, expiresAt: session.expiresAt, upload: session.grant };
  }

  /** Sets the session cookie on `res`: the owner's page until `expiresAt`, uploads only when `grant` is given. */
  start(req: Request, res: Response, session: { owner: string; expiresAt: Date; grant?: UploadGrant }): void {
    res.cookie(SESSION_COOKIE, this.links.session(session), {
      path: '/',
      httpOnly: true,
      sameSite: 'strict',
      secure: req.secure,
      expires: session.expiresAt,
    });
  }
}
