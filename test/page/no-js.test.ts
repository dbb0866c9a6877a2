import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { Env } from '../../src/config';
import { launchChromium, type PageServer, startPageServer } from '../helpers/browser';

let browser: Browser;
let s: PageServer;
let context: BrowserContext;
let page: Page;

beforeAll(async () => {
  browser = await launchChromium();
});
afterAll(async () => browser?.close());
afterEach(async () => {
  await context?.close();
  await s?.close();
});

async function openPage(env: Env = {}) {
  s = await startPageServer(env);
  context = await browser.newContext({ javaScriptEnabled: false });
  page = await context.newPage();
  page.setDefaultTimeout(15_000);
  await page.goto(`${s.url}/`);
}

const fileRow = (name: string) => page.locator('#files tbody tr', { hasText: name });

/** Submits the plain upload form and returns the status of the page it lands on. */
async function submitUpload(): Promise<number> {
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().isNavigationRequest() && r.request().method() === 'POST'),
    page.getByRole('button', { name: 'Upload' }).click(),
  ]);
  await page.waitForLoadState();
  return response.status();
}

describe('the upload page without JavaScript', () => {
  it('uploads through the plain form, comes back to the page and shows the result', async () => {
    await openPage();
    await page.setInputFiles('#file-input', [
      { name: 'a.txt', mimeType: 'text/plain', buffer: Buffer.from('alpha') },
      { name: 'b.csv', mimeType: 'text/csv', buffer: Buffer.from('x,y\n1,2\n') },
    ]);
    expect(await submitUpload()).toBe(303);
    expect(new URL(page.url()).pathname).toBe('/');
    expect(await page.locator('#notice').innerText()).toBe('Uploaded 2 files: a.txt, b.csv.');
    expect(await fileRow('a.txt').innerText()).toMatch(/5 bytes[\s\S]*text\/plain[\s\S]*Ready/);
    expect(await fileRow('b.csv').getByRole('link', { name: 'Download b.csv' }).getAttribute('href')).toMatch(/^\/v1\/files\/[0-9a-f]{32}\/content$/);

    // Deleting works the same way: a form post and a page load.
    await Promise.all([page.waitForURL(/\?deleted=1$/), page.getByRole('button', { name: 'Delete b.csv' }).click()]);
    expect(await page.locator('#notice').innerText()).toBe('File deleted.');
    expect(await fileRow('b.csv').count()).toBe(0);
    expect(await fileRow('a.txt').count()).toBe(1);
  });

  it('shows a too-large upload as a readable page, not JSON, and keeps nothing', async () => {
    await openPage({ MAX_UPLOAD_BYTES: '1kb' });
    await page.setInputFiles('#file-input', { name: 'big.txt', mimeType: 'text/plain', buffer: Buffer.alloc(64 * 1024, 'x') });
    expect(await submitUpload()).toBe(413);
    expect(await page.locator('#notice').innerText()).toMatch(/^Too large: files can be at most 1 KB each\. Nothing was saved\.\s+\(request id [\w-]+\)$/);
    expect(await page.getByRole('heading', { name: 'Upload files' }).count()).toBe(1);
    expect(await page.locator('#files').innerText()).toContain('No files yet.');
    expect(await s.storedFiles()).toEqual([]);
  });

  it('shows a hostile file name as text', async () => {
    await openPage();
    await page.setInputFiles('#file-input', { name: `<img src=x onerror=alert(1)>Tom & Jerry's.txt`, mimeType: 'text/plain', buffer: Buffer.from('x') });
    expect(await submitUpload()).toBe(303);
    // The display name is sanitized on upload; whatever is left is shown, not interpreted.
    expect(await page.locator('#notice').innerText()).toBe(`Uploaded 1 file: _img src=x onerror=alert(1)_Tom & Jerry's.txt.`);
    expect(await page.locator('#files .file-name').innerText()).toBe(`_img src=x onerror=alert(1)_Tom & Jerry's.txt`);
    expect(await page.locator('main img').count()).toBe(0);
  });
});
