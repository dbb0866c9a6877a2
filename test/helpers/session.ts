import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BrowserContext } from 'playwright-core';
import type { UploadGrant } from '../../src/auth/principal';
import { SESSION_COOKIE } from '../../src/auth/sessions';
import type { TestApp } from './app';

/**
 * A page session for `owner`, as opening a page link (or, with `grant`, an upload link) would set
 * it: the `Cookie` header value, signed with the app's key. For supertest: `.set('Cookie', ...)`.
 */
export function sessionCookie(t: Pick<TestApp, 'resources'>, owner: string, options: { expiresInMs?: number; grant?: UploadGrant } = {}): string {
  const expiresAt = t.resources.links.expiryIn(options.expiresInMs ?? 3600_000);
  return `${SESSION_COOKIE}=${t.resources.links.session({ owner, expiresAt, grant: options.grant })}`;
}

/** Gives a Chromium context the page session of `owner` on the server at `url` (as if a page link had been opened). */
export async function addSession(context: BrowserContext, t: Pick<TestApp, 'resources'>, url: string, owner: string, options: { grant?: UploadGrant } = {}): Promise<void> {
  const value = sessionCookie(t, owner, options).slice(SESSION_COOKIE.length + 1);
  await context.addCookies([{ name: SESSION_COOKIE, value, url, httpOnly: true, sameSite: 'Strict' }]);
}

export interface OtherOrigin {
  /** The server as `http://<host>:<port>`; `host` is `localhost` (another site than 127.0.0.1) unless asked otherwise. */
  url: string;
  close(): Promise<void>;
}

/**
 * A second web server on 127.0.0.1, another origin than the app, serving `page` (HTML) at `/`.
 * Reached as `localhost` it is another site too (the app is reached as 127.0.0.1); as `127.0.0.1`
 * it is the same site but another origin (another port).
 */
export async function startOtherOrigin(page: string, host: 'localhost' | '127.0.0.1' = 'localhost'): Promise<OtherOrigin> {
  const server = http.createServer((req, res) => {
    if (req.url !== '/') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(page);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
