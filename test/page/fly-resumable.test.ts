import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Browser, BrowserContext, Page, Request, Route } from 'playwright-core';
import { launchChromium } from '../helpers/browser';
import { startFlyProxy } from '../helpers/fly-proxy';
import { type PostgresServer, startPostgres } from '../helpers/postgres';
import { freePort, runService, type ServiceProcess } from '../helpers/service';
import { randomData, sha256 } from '../helpers/streams';
import { makeTempDir } from '../helpers/tmp';

/**
 * The upload page on two Fly "Machines" with their own volumes, on one PostgreSQL catalog, behind
 * a stand-in for Fly's proxy that sends the page's chunks to the Machine that did not create the
 * upload. The page learns the Machine from the answers (Stowage-Machine) and sends its chunks
 * there with fly-force-instance-id, also after a reload: 8 MiB chunks are too large for Fly to
 * replay, and the wrong Machine refuses them.
 */

const MiB = 1024 * 1024;
const SIZE = 20 * MiB + 5;
const IAD = '148e0a1b2c3d';
const CDG = '9080e4f5a6b7';

let browser: Browser;
let postgres: PostgresServer;
let dir: string;
let file: string;
let bytes: Buffer;
const running: ServiceProcess[] = [];
const machines: Record<string, string> = {};
let proxy: { url: string; close(): Promise<void> };
let context: BrowserContext;
let page: Page;
/** The tus requests the page made, in order: method and the Machine it asked for. */
let tusRequests: { method: string; forced?: string }[];

async function machine(id: string): Promise<string> {
  const home = path.join(dir, id);
  await fsp.mkdir(home, { recursive: true });
  const port = await freePort();
  // Loopback dev mode, as the other page suites: the page and its scripts act as the owner `local`.
  const env = { HOME: home, STORAGE: 'volume', STORAGE_PATH: path.join(home, 'files'), DATABASE_URL: postgres.url, FLY_MACHINE_ID: id, PORT: String(port), HOST: '127.0.0.1', TUS_PAGE_THRESHOLD: '1mb' };
  const svc = runService(['serve'], { cwd: home, env });
  running.push(svc);
  await svc.waitFor((l) => l.msg === 'listening');
  return `http://127.0.0.1:${port}`;
}

beforeAll(async () => {
  [browser, postgres, dir] = await Promise.all([launchChromium(), startPostgres(), makeTempDir('stowage-page-fly-')]);
  bytes = randomData(SIZE);
  // A file on disk keeps its modification time, so choosing it again after a reload finds it by fingerprint.
  file = path.join(dir, 'video.bin');
  await fsp.writeFile(file, bytes);
  [machines[IAD], machines[CDG]] = await Promise.all([machine(IAD), machine(CDG)]);
  // Creations go to iad, everything else (the page, the chunks) to cdg.
  proxy = await startFlyProxy(machines, (req) => (req.method === 'POST' ? IAD : CDG));
});
afterAll(async () => {
  await browser?.close();
  await proxy?.close();
  await Promise.all(running.splice(0).map((s) => s.stop()));
  await Promise.all([postgres?.stop(), fsp.rm(dir, { recursive: true, force: true })]);
});

it('sends the chunks to the Machine that holds the upload, and after a reload learns it again from HEAD', async () => {
  context = await browser.newContext();
  page = await context.newPage();
  page.setDefaultTimeout(30_000);
  tusRequests = [];
  page.on('request', (req: Request) => {
    if (new URL(req.url()).pathname.startsWith('/v1/tus')) tusRequests.push({ method: req.method(), forced: req.headers()['fly-force-instance-id'] });
  });
  await page.goto(`${proxy.url}/`);

  // The second chunk is held, then the page reloaded: the server has the first 8 MiB.
  let seen = 0;
  let held!: (route: Route) => void;
  const holding = new Promise<Route>((resolve) => (held = resolve));
  await page.route('**/v1/tus/**', async (route) => {
    if (route.request().method() === 'PATCH' && ++seen === 2) return held(route);
    await route.continue();
  });
  await page.setInputFiles('#file-input', file);
  await holding;
  expect(tusRequests.map((r) => `${r.method} ${r.forced ?? '-'}`)).toEqual(['POST -', `PATCH ${IAD}`, `PATCH ${IAD}`]);
  await page.reload();
  await page.unrouteAll({ behavior: 'ignoreErrors' });

  const afterReload = tusRequests.length;
  await page.setInputFiles('#file-input', file);
  const row = page.locator('#uploads li[data-resumable="true"]:not([data-state="uploading"])');
  await row.waitFor();
  expect({ state: await row.getAttribute('data-state'), status: await row.locator('.upload-status').textContent() }).toEqual({ state: 'done', status: 'Uploaded.' });
  // The HEAD, sent anywhere, was replayed to iad, whose answer named it; the rest went straight there.
  expect(tusRequests.slice(afterReload).map((r) => `${r.method} ${r.forced ?? '-'}`)).toEqual(['HEAD -', `PATCH ${IAD}`, `PATCH ${IAD}`]);

  const listed = (await (await fetch(`${proxy.url}/v1/files`)).json()) as { files: { name: string; size: number; sha256: string; status: string }[] };
  expect(listed.files).toEqual([expect.objectContaining({ name: 'video.bin', size: SIZE, sha256: sha256(bytes), status: 'ready' })]);
  await context.close();
});
