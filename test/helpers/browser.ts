import fsp from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { DEV_PRINCIPAL } from '../../src/auth/authenticator';
import type { Env } from '../../src/config';
import { createWorker } from '../../src/resources';
import { buildTestApp, type TestApp } from './app';
import { ROOT } from './service';

/** Debian's chromium (see STACK-NOTES): playwright's own browser downloads are not available. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

export interface PageServer extends TestApp {
  url: string;
  /** Whose files the page shows: the dev-mode owner `local`. */
  owner: string;
  /**
   * The JSON API on this server as the page's own scripts call it: without credentials, so as
   * the dev-mode owner (there is no key to send; one existing at start-up would end dev mode).
   */
  api(path: string, init?: RequestInit): Promise<globalThis.Response>;
  /**
   * Starts the task worker (one slot, as `serve` runs with WORKERS=1). Not started by default,
   * so a test can look at a report while it is still queued.
   */
  startWorker(): void;
}

/**
 * The real app on a real HTTP server on 127.0.0.1, with a fresh store and catalog.
 * (`devMode: false`: an API server that needs credentials, e.g. for a browser app's JWT.)
 *
 * The page suites exercise the loopback dev mode the quick start uses: HOST is 127.0.0.1 and no
 * API key exists, so the page and its scripts act as the owner `local` without credentials. The
 * session-based page (signed page links and session cookies) is tested with that work; every
 * other suite calls the app with API keys.
 */
export async function startPageServer(env: Env = {}, options: { devMode?: boolean } = {}): Promise<PageServer> {
  const devMode = options.devMode ?? true;
  // Without dev mode, configured as deployed (HOST 0.0.0.0: credentials required); it still listens on 127.0.0.1.
  const t = await buildTestApp(devMode ? { HOST: '127.0.0.1', ...env } : env, undefined, { keys: !devMode });
  if (devMode && !t.resources.authenticator.devMode) {
    await t.close();
    throw new Error('the page server is not in loopback dev mode: HOST must be loopback, with no API key and no JWT setting');
  }
  const server = http.createServer(t.app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const worker = createWorker(t.resources, t.config, t.logs.log, 1)!;
  let started = false;
  return {
    ...t,
    url: `http://127.0.0.1:${port}`,
    owner: DEV_PRINCIPAL.owner,
    api: (apiPath, init) => fetch(`http://127.0.0.1:${port}${apiPath}`, init),
    startWorker: () => {
      if (!started) worker.start();
      started = true;
    },
    close: async () => {
      if (started) await worker.stop(0);
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await t.close();
    },
  };
}

/** Screenshots land in test-artifacts/ (gitignored) for a person to look at. */
export async function saveScreenshot(page: Page, name: string): Promise<string> {
  const dir = path.join(ROOT, 'test-artifacts');
  await fsp.mkdir(dir, { recursive: true });
  const file = path.join(dir, name);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/**
 * Collects Content-Security-Policy violations: the page's violation events (hooked before any
 * page script runs), Chromium's console reports of them, and uncaught script errors. Console
 * lines about expected 4xx answers (a refused upload) are not violations.
 */
export async function watchForViolations(page: Page): Promise<() => Promise<string[]>> {
  const consoleErrors: string[] = [];
  page.on('console', (msg) => {
    if (/Content.Security.Policy/i.test(msg.text())) consoleErrors.push(msg.text());
  });
  page.on('pageerror', (err) => consoleErrors.push(`uncaught: ${err.message}`));
  // Strings, not functions: the tests compile without the DOM library.
  await page.addInitScript(`
    window.__cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));
  `);
  return async () => [...((await page.evaluate('window.__cspViolations')) as string[]), ...consoleErrors];
}
