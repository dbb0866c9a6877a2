import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Browser, BrowserContext, Page, Request, Route } from 'playwright-core';
import { launchChromium, watchForViolations } from '../helpers/browser';
import { freePort, runService, type ServiceProcess } from '../helpers/service';
import { randomData, sha256 } from '../helpers/streams';
import { makeTempDir } from '../helpers/tmp';

// The page sends files from TUS_PAGE_THRESHOLD through tus in 8 MiB chunks; 20 MiB is three PATCHes.
const MiB = 1024 * 1024;
const SIZE = 20 * MiB + 5;

let browser: Browser;
/** The built server (`@tus/server` is an ES module, which Jest's in-process app can't load). */
let svc: ServiceProcess | undefined;
let url: string;
let context: BrowserContext;
let page: Page;
let dir: string;
let file: string;
let bytes: Buffer;
/** The tus requests the page made, in order: method and Upload-Offset. */
let tusRequests: { method: string; offset?: string }[];
let multipartPosts: number;

beforeAll(async () => {
  browser = await launchChromium();
  dir = await makeTempDir('stowage-page-tus-');
  bytes = randomData(SIZE);
  // A file on disk keeps its modification time, so choosing it again after a reload finds it by fingerprint.
  file = path.join(dir, 'video.bin');
  await fsp.writeFile(file, bytes);
});
afterAll(async () => {
  await browser?.close();
  await fsp.rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await context?.close();
  await svc?.stop();
});

async function openPage(): Promise<() => Promise<string[]>> {
  // Loopback dev mode, as the other page suites: the page and its scripts act as the owner `local`.
  const home = await fsp.mkdtemp(path.join(dir, 'server-'));
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  const env = { HOME: home, STORAGE: 'volume', STORAGE_PATH: path.join(home, 'files'), PORT: String(port), HOST: '127.0.0.1', TUS_PAGE_THRESHOLD: '1mb' };
  svc = runService(['serve'], { cwd: home, env });
  await svc.waitFor((l) => l.msg === 'listening');
  context = await browser.newContext();
  page = await context.newPage();
  page.setDefaultTimeout(30_000);
  tusRequests = [];
  multipartPosts = 0;
  page.on('request', (req: Request) => {
    const at = new URL(req.url()).pathname;
    if (at.startsWith('/v1/tus')) tusRequests.push({ method: req.method(), offset: req.headers()['upload-offset'] });
    if (at === '/v1/files' && req.method() === 'POST') multipartPosts++;
  });
  const violations = await watchForViolations(page);
  await page.goto(`${url}/`);
  return violations;
}

/** Holds the tus PATCH number `n` (from 1) until the test lets it go; the others pass. */
async function holdPatch(n: number): Promise<{ held: Promise<Route> }> {
  let seen = 0;
  let held!: (route: Route) => void;
  const holding = new Promise<Route>((resolve) => (held = resolve));
  await page.route('**/v1/tus/**', async (route) => {
    if (route.request().method() === 'PATCH' && ++seen === n) return held(route);
    await route.continue();
  });
  // Wrapped: an async function returning the promise itself would wait for it.
  return { held: holding };
}

async function outcome(): Promise<{ state: string | null; status: string | null }> {
  const row = page.locator('#uploads li[data-resumable="true"]:not([data-state="uploading"]):not([data-state="paused"])');
  await row.waitFor();
  return { state: await row.getAttribute('data-state'), status: await row.locator('.upload-status').textContent() };
}

/** The owner's files as the API lists them. */
async function listed(): Promise<{ name: string; size: number; sha256: string; status: string }[]> {
  return ((await (await fetch(`${url}/v1/files`)).json()) as { files: { name: string; size: number; sha256: string; status: string }[] }).files;
}

const patches = () => tusRequests.filter((r) => r.method === 'PATCH');

describe('the upload page sends large files through tus', () => {
  it('resumes after the connection drops mid-upload and lists the file ready with its sha256', async () => {
    const violations = await openPage();
    const second = (await holdPatch(2)).held;
    await page.setInputFiles('#file-input', file);
    // The first chunk arrived; the second is cut as a dropped connection would cut it.
    const route = await second;
    await route.abort('connectionreset');
    await page.unroute('**/v1/tus/**');

    expect(await outcome()).toEqual({ state: 'done', status: 'Uploaded.' });
    await page.locator('#files tbody tr', { hasText: 'video.bin' }).waitFor();
    expect(await listed()).toEqual([expect.objectContaining({ name: 'video.bin', size: SIZE, sha256: sha256(bytes), status: 'ready' })]);
    // One upload, not two: the client asked the server where it stood and went on from the first chunk.
    expect(tusRequests.filter((r) => r.method === 'POST')).toHaveLength(1);
    const afterCut = tusRequests.slice(tusRequests.indexOf(patches()[1]!) + 1);
    expect(afterCut[0]).toEqual({ method: 'HEAD', offset: undefined });
    expect(afterCut.find((r) => r.method === 'PATCH')?.offset).toBe(String(8 * MiB));
    expect(multipartPosts).toBe(0);
    expect(await violations()).toEqual([]);
  });

  it('pauses and resumes on the buttons', async () => {
    await openPage();
    const second = (await holdPatch(2)).held;
    await page.setInputFiles('#file-input', file);
    const route = await second;
    await page.getByRole('button', { name: 'Pause upload of video.bin' }).click();
    const row = page.locator('#uploads li', { hasText: 'video.bin' });
    expect(await row.getAttribute('data-state')).toBe('paused');
    expect(await row.locator('.upload-status').textContent()).toBe('Paused.');
    expect(Number(await row.locator('progress').getAttribute('value'))).toBeGreaterThanOrEqual(39);
    // The paused request is gone from the page; nothing more is sent until Resume.
    await route.abort().catch(() => undefined);
    await page.unroute('**/v1/tus/**');
    const sentWhilePaused = tusRequests.length;
    expect((await listed())[0]).toEqual(expect.objectContaining({ name: 'video.bin', status: 'pending' }));
    expect(tusRequests).toHaveLength(sentWhilePaused);

    await page.getByRole('button', { name: 'Resume upload of video.bin' }).click();
    expect(await outcome()).toEqual({ state: 'done', status: 'Uploaded.' });
    expect(await listed()).toEqual([expect.objectContaining({ size: SIZE, sha256: sha256(bytes), status: 'ready' })]);
    expect(tusRequests.filter((r) => r.method === 'POST')).toHaveLength(1);
  });

  it('goes on after a reload when the same file is chosen again (its upload URL kept in localStorage)', async () => {
    await openPage();
    const second = (await holdPatch(2)).held;
    await page.setInputFiles('#file-input', file);
    await second;
    // The reload drops the held chunk: the server has the first 8 MiB.
    await page.reload();
    await page.unrouteAll({ behavior: 'ignoreErrors' });

    await page.setInputFiles('#file-input', file);
    expect(await outcome()).toEqual({ state: 'done', status: 'Uploaded.' });
    expect(await listed()).toEqual([expect.objectContaining({ name: 'video.bin', size: SIZE, sha256: sha256(bytes), status: 'ready' })]);
    // No second upload was created: after the reload the page asked for the offset and sent the rest.
    expect(tusRequests.filter((r) => r.method === 'POST')).toHaveLength(1);
    expect(patches().at(-2)?.offset).toBe(String(8 * MiB));
    // Finished uploads leave nothing behind to resume.
    expect(await page.evaluate('Object.keys(localStorage).filter((k) => k.startsWith("tus::"))')).toEqual([]);
  });
});
