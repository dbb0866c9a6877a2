import fsp from 'node:fs/promises';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { Env } from '../../src/config';
import { launchChromium, type PageServer, startPageServer, watchForViolations } from '../helpers/browser';
import { type OtherOrigin, startOtherOrigin } from '../helpers/session';
import { sha256 } from '../helpers/streams';

let browser: Browser;
let s: PageServer;
let other: OtherOrigin | undefined;
let context: BrowserContext;
let page: Page;
let violations: () => Promise<string[]>;

beforeAll(async () => {
  browser = await launchChromium();
});
afterAll(async () => browser?.close());
afterEach(async () => {
  await context?.close();
  await other?.close();
  other = undefined;
  await s?.close();
});

/** A server as deployed (keys exist, so no dev mode): the page needs a session. */
async function start(env: Env = {}): Promise<void> {
  s = await startPageServer(env, { devMode: false });
  context = await browser.newContext({ acceptDownloads: true });
  page = await context.newPage();
  page.setDefaultTimeout(15_000);
  violations = await watchForViolations(page);
}

/** A call to the running server's API with `owner`'s write key (the URLs it answers name this server). */
async function api(owner: string, method: string, path: string, body?: object): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${s.url}${path}`, {
    method,
    headers: { Authorization: `Bearer ${await s.key(owner)}`, ...(body && { 'Content-Type': 'application/json' }) },
    body: body && JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function fileNames(owner: string): Promise<string[]> {
  const { body } = await api(owner, 'GET', '/v1/files');
  return (body.files as { name: string }[]).map((f) => f.name).sort();
}

async function uploadWithKey(owner: string, name: string, text: string): Promise<void> {
  const form = new FormData();
  form.append('file', new Blob([text], { type: 'text/plain' }), name);
  const res = await fetch(`${s.url}/v1/files`, { method: 'POST', headers: { Authorization: `Bearer ${await s.key(owner)}` }, body: form });
  expect(res.status).toBe(201);
}

const fileRow = (name: string) => page.locator('#files tbody tr', { hasText: name });

async function uploadOutcome(name: string): Promise<{ state: string | null; status: string | null }> {
  const row = page.locator('#uploads li:not([data-state="uploading"])', { hasText: name });
  await row.waitFor();
  return { state: await row.getAttribute('data-state'), status: await row.locator('.upload-status').textContent() };
}

/** A page on another origin with a link to `href`, followed as a person would click it. */
async function followFrom(href: string): Promise<void> {
  other = await startOtherOrigin(`<!doctype html><title>The app</title><a id="go" href="${href}">Open stowage</a>`);
  await page.goto(`${other.url}/`);
  await Promise.all([page.waitForURL(`${s.url}/`), page.click('#go')]);
}

describe('the page and its session', () => {
  it('without a session says how to get one, and shows no files and no upload form', async () => {
    await start();
    await uploadWithKey('alice', 'private.txt', 'not for strangers');
    const response = await page.goto(`${s.url}/`);
    expect(response!.status()).toBe(401);
    await page.getByRole('heading', { name: 'This page needs a session' }).waitFor();
    expect(await page.locator('main').innerText()).toContain('stowage links page --owner NAME');
    expect(await page.locator('#upload-form, #files, #report-form, input[type=file]').count()).toBe(0);
    expect(await page.content()).not.toContain('private.txt');
    expect(await violations()).toEqual([]);
  });

  it('opens from a page link followed from another site, then uploads and lists', async () => {
    await start();
    await uploadWithKey('alice', 'earlier.txt', 'from before');
    const link = await api('alice', 'POST', '/v1/page-links', { expiresIn: '2h' });
    expect(link.status).toBe(201);

    // From another site's page: the cookie is SameSite=Strict, and still counts once on the page.
    await followFrom(link.body.url as string);
    await page.locator('.session', { hasText: 'Files of alice' }).waitFor();
    await fileRow('earlier.txt').waitFor();
    const [cookie] = await context.cookies(s.url);
    expect(cookie).toMatchObject({ name: 'stowage_session', httpOnly: true, sameSite: 'Strict', secure: false, path: '/' });
    // Chromium moves the expiry by the server's clock (its Date header, to the second).
    expect(Math.abs(cookie!.expires - Date.parse(link.body.expiresAt as string) / 1000)).toBeLessThanOrEqual(1);

    await page.setInputFiles('#file-input', { name: 'new.txt', mimeType: 'text/plain', buffer: Buffer.from('uploaded from the page') });
    expect(await uploadOutcome('new.txt')).toEqual({ state: 'done', status: 'Uploaded.' });
    await fileRow('new.txt').waitFor();
    expect(await fileNames('alice')).toEqual(['earlier.txt', 'new.txt']);

    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download earlier.txt' }).click()]);
    expect(sha256(await fsp.readFile((await download.path())!))).toBe(sha256('from before'));
    await page.getByRole('button', { name: 'Delete new.txt' }).click();
    await fileRow('new.txt').waitFor({ state: 'detached' });
    expect(await fileNames('alice')).toEqual(['earlier.txt']);
    expect(await violations()).toEqual([]);
  });

  it("refuses a form on another origin of the same site that posts to /v1/files with the session (403 cross_site_form)", async () => {
    await start();
    const link = await api('alice', 'POST', '/v1/page-links', {});
    await page.goto(link.body.url as string);
    await page.waitForURL(`${s.url}/`);
    // 127.0.0.1 on another port: the same site, so the browser sends even a Strict cookie.
    other = await startOtherOrigin(
      `<!doctype html><form method="post" enctype="multipart/form-data" action="${s.url}/v1/files"><input type="file" name="file" id="f"><button>Send</button></form>`,
      '127.0.0.1',
    );
    await page.goto(`${other.url}/`);
    await page.setInputFiles('#f', { name: 'planted.txt', mimeType: 'text/plain', buffer: Buffer.from('csrf') });
    const [response] = await Promise.all([page.waitForResponse(`${s.url}/v1/files`), page.click('button')]);
    expect(response.status()).toBe(403);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('cross_site_form');
    expect((await response.request().allHeaders()).cookie).toMatch(/^stowage_session=/);
    expect(await fileNames('alice')).toEqual([]);
  });
});

describe('upload links in a browser', () => {
  it("take a second origin's form post without credentials, within the link's limits", async () => {
    await start();
    const link = await api('alice', 'POST', '/v1/upload-links', { expiresIn: '1h', maxBytes: 1024, maxFiles: 2, allowedTypes: ['text/plain'] });
    expect(link.status).toBe(201);
    other = await startOtherOrigin(
      `<!doctype html><title>Send us your documents</title><form method="post" enctype="multipart/form-data" action="${link.body.url as string}"><input type="file" name="file" id="f" multiple><button>Send</button></form>`,
    );

    await page.goto(`${other.url}/`);
    await page.setInputFiles('#f', [
      { name: 'one.txt', mimeType: 'text/plain', buffer: Buffer.from('first') },
      { name: 'two.txt', mimeType: 'text/plain', buffer: Buffer.from('second') },
    ]);
    await Promise.all([page.waitForURL(link.body.url as string), page.click('button')]);
    await page.getByRole('heading', { name: 'Uploaded 2 files' }).waitFor();
    expect(await page.locator('.uploaded').innerText()).toMatch(/one\.txt[\s\S]*two\.txt/);
    expect(await fileNames('alice')).toEqual(['one.txt', 'two.txt']);

    await page.goto(`${other.url}/`);
    await page.setInputFiles('#f', { name: 'big.txt', mimeType: 'text/plain', buffer: Buffer.alloc(2048, 'x') });
    const [refused] = await Promise.all([page.waitForResponse(link.body.url as string), page.click('button')]);
    expect(refused.status()).toBe(413);
    await page.locator('#link-problem', { hasText: 'Too large: files can be at most 1 KB each. Nothing was saved.' }).waitFor();
    expect(await fileNames('alice')).toEqual(['one.txt', 'two.txt']);
  });

  it("open an upload-only page: the form within the link's limits, none of the owner's files", async () => {
    await start();
    await uploadWithKey('alice', 'private.txt', 'not for the uploader');
    const link = await api('alice', 'POST', '/v1/upload-links', { maxBytes: 1024, allowedTypes: ['text/plain'] });
    await followFrom(link.body.pageUrl as string);
    await page.locator('.session', { hasText: 'Uploading files for alice' }).waitFor();
    expect(await page.locator('.dropzone-hint').innerText()).toBe('Up to 1 KB per file, text/plain.');
    expect(await page.locator('#files, #report-form').count()).toBe(0);
    expect(await page.content()).not.toContain('private.txt');

    await page.setInputFiles('#file-input', [
      { name: 'scan.txt', mimeType: 'text/plain', buffer: Buffer.from('a scan') },
      { name: 'huge.txt', mimeType: 'text/plain', buffer: Buffer.alloc(4096, 'x') },
    ]);
    expect(await uploadOutcome('scan.txt')).toEqual({ state: 'done', status: 'Uploaded.' });
    expect(await uploadOutcome('huge.txt')).toEqual({ state: 'error', status: 'Too large: files can be at most 1 KB each. Nothing was saved.' });
    expect(await fileNames('alice')).toEqual(['private.txt', 'scan.txt']);
    expect(await page.content()).not.toContain('private.txt');
    expect(await violations()).toEqual([]);
  });
});
