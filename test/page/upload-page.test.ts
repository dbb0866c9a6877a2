import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Browser, BrowserContext, BrowserContextOptions, FileChooser, Page, Response } from 'playwright-core';
import type { Env } from '../../src/config';
import { formatBytes } from '../../src/web/format';
import { CONTENT_SECURITY_POLICY } from '../../src/web/security-headers';
import { launchChromium, type PageServer, saveScreenshot, startPageServer, watchForViolations } from '../helpers/browser';
import { randomData, sha256 } from '../helpers/streams';
import { makeTempDir } from '../helpers/tmp';

let browser: Browser;
let s: PageServer;
let context: BrowserContext;
let page: Page;
let violations: () => Promise<string[]>;

beforeAll(async () => {
  browser = await launchChromium();
});
afterAll(async () => browser?.close());
afterEach(async () => {
  await context?.close();
  await s?.close();
});

async function openPage(env: Env = {}, options: BrowserContextOptions = {}): Promise<Response> {
  s = await startPageServer(env);
  context = await browser.newContext({ acceptDownloads: true, ...options });
  page = await context.newPage();
  page.setDefaultTimeout(15_000);
  violations = await watchForViolations(page);
  return (await page.goto(`${s.url}/`))!;
}

const fileRow = (name: string) => page.locator('#files tbody tr', { hasText: name });
const uploadRow = (name: string) => page.locator('#uploads li', { hasText: name });

/** Waits until an upload row has left the `uploading` state, and says how it ended. */
async function uploadOutcome(name: string): Promise<{ state: string | null; status: string | null; progress: string | null }> {
  const row = page.locator('#uploads li:not([data-state="uploading"])', { hasText: name });
  await row.waitFor();
  return {
    state: await row.getAttribute('data-state'),
    status: await row.locator('.upload-status').textContent(),
    progress: await row.locator('progress').getAttribute('value'),
  };
}

async function apiFiles(): Promise<{ id: string; name: string; sha256: string; status: string }[]> {
  return ((await (await s.api('/v1/files')).json()) as { files: { id: string; name: string; sha256: string; status: string }[] }).files;
}

describe('the upload page with JavaScript', () => {
  it('uploads two chosen files with a progress bar each, lists them, downloads one byte for byte and deletes the other', async () => {
    const response = await openPage();
    expect(response.headers()['content-security-policy']).toBe(CONTENT_SECURITY_POLICY);
    const photo = randomData(3 * 1024 * 1024 + 17);
    const csv = Buffer.from('name,amount\nZoë,3\n');
    await page.setInputFiles('#file-input', [
      { name: 'photo.bin', mimeType: 'application/octet-stream', buffer: photo },
      { name: 'list.csv', mimeType: 'text/csv', buffer: csv },
    ]);

    for (const name of ['photo.bin', 'list.csv']) {
      expect(await uploadOutcome(name)).toEqual({ state: 'done', status: 'Uploaded.', progress: '100' });
    }
    // The list is refreshed without a page load and shows name, size, type and status.
    await fileRow('photo.bin').waitFor();
    await fileRow('list.csv').waitFor();
    expect(await fileRow('photo.bin').innerText()).toContain(formatBytes(photo.length));
    expect(await fileRow('list.csv').innerText()).toMatch(/text\/csv[\s\S]*Ready/);
    expect(await page.locator('#notice').innerText()).toMatch(/Uploaded/);

    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Download photo.bin' }).click(),
    ]);
    expect(download.suggestedFilename()).toBe('photo.bin');
    expect(sha256(await fsp.readFile((await download.path())!))).toBe(sha256(photo));

    await page.getByRole('button', { name: 'Delete list.csv' }).click();
    await fileRow('list.csv').waitFor({ state: 'detached' });
    await page.locator('#notice', { hasText: 'Deleted list.csv.' }).waitFor();
    expect((await apiFiles()).map((f) => f.name)).toEqual(['photo.bin']);
    expect(await s.storedFiles()).toHaveLength(1);
    expect(await violations()).toEqual([]);
  });

  it('tells per file why an upload failed: too large, wrong type; the others still go through', async () => {
    await openPage({ MAX_UPLOAD_BYTES: '1kb', ALLOWED_CONTENT_TYPES: 'text/*' });
    await page.setInputFiles('#file-input', [
      { name: 'big.txt', mimeType: 'text/plain', buffer: Buffer.alloc(64 * 1024, 'x') },
      { name: 'photo.png', mimeType: 'image/png', buffer: Buffer.from('not really a png') },
      { name: 'note.txt', mimeType: 'text/plain', buffer: Buffer.from('hello') },
    ]);
    expect(await uploadOutcome('big.txt')).toMatchObject({
      state: 'error',
      status: 'Too large: files can be at most 1 KB each. Nothing was saved.',
    });
    expect(await uploadOutcome('photo.png')).toMatchObject({
      state: 'error',
      status: 'This type of file is not accepted here (accepted: text/*). Nothing was saved.',
    });
    expect(await uploadOutcome('note.txt')).toMatchObject({ state: 'done' });
    await fileRow('note.txt').waitFor();
    expect((await apiFiles()).map((f) => f.name)).toEqual(['note.txt']);
    // A refresh after note.txt may have caught big.txt still uploading; its failure refreshes again.
    await fileRow('big.txt').waitFor({ state: 'detached' });
    expect(await page.locator('#files').innerText()).not.toContain('big.txt');
    expect(await violations()).toEqual([]);
  });

  it('says so when the store is unavailable', async () => {
    await openPage();
    // Replace the store directory with a plain file: nothing can be written there any more.
    await fsp.rm(s.config.storage.path, { recursive: true });
    await fsp.writeFile(s.config.storage.path, 'not a directory');
    await page.setInputFiles('#file-input', { name: 'a.txt', mimeType: 'text/plain', buffer: Buffer.from('a') });
    expect(await uploadOutcome('a.txt')).toMatchObject({
      state: 'error',
      status: 'Storage is unavailable right now, so nothing was saved. Please try again in a moment.',
    });
    expect(await apiFiles()).toEqual([]);
  });

  it('says so when the connection fails, and keeps the list as it was', async () => {
    await openPage();
    await page.setInputFiles('#file-input', { name: 'first.txt', mimeType: 'text/plain', buffer: Buffer.from('first') });
    await fileRow('first.txt').waitFor();
    await context.setOffline(true);
    await page.setInputFiles('#file-input', { name: 'lost.txt', mimeType: 'text/plain', buffer: Buffer.from('lost') });
    expect(await uploadOutcome('lost.txt')).toMatchObject({
      state: 'error',
      status: 'The connection failed before the upload finished. Check your connection and try again.',
    });
    // The refresh after the failure can't reach the server either: the list stays, nothing throws.
    await context.setOffline(false);
    expect(await fileRow('first.txt').count()).toBe(1);
    expect((await apiFiles()).map((f) => f.name)).toEqual(['first.txt']);
    expect(await violations()).toEqual([]);
  });

  it('cancels an upload in flight, and the server keeps nothing of it', async () => {
    await openPage();
    // A slow uplink keeps the upload in flight long enough to press Cancel mid-way.
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 128 * 1024 });
    // From disk: Playwright hands a path to the browser instead of pushing the bytes through CDP.
    const dir = await makeTempDir();
    const file = path.join(dir, 'slow.bin');
    await fsp.writeFile(file, randomData(4 * 1024 * 1024));
    await page.setInputFiles('#file-input', file);
    await page.locator('#uploads progress:not([value="0"])').waitFor();
    await page.getByRole('button', { name: 'Cancel upload of slow.bin' }).click();

    expect(await uploadOutcome('slow.bin')).toMatchObject({ state: 'cancelled', status: 'Cancelled. Nothing was saved.' });
    await s.logs.waitFor((l) => l.msg === 'upload failed');
    expect(await apiFiles()).toEqual([]);
    expect(await s.storedFiles()).toEqual([]);
    await fsp.rm(dir, { recursive: true });
  });

  it('is operable by keyboard: the drop zone takes focus visibly and opens the file picker', async () => {
    await openPage();
    // Listening turns on Playwright's file chooser interception, without waiting for the browser
    // to confirm it: listening long before the key press keeps the two from racing.
    const chosen = new Promise<FileChooser>((resolve) => page.once('filechooser', resolve));
    for (let i = 0; i < 10 && (await page.evaluate('document.activeElement?.id')) !== 'file-input'; i++) {
      await page.keyboard.press('Tab');
    }
    expect(await page.evaluate('document.activeElement?.id')).toBe('file-input');
    expect(await page.evaluate("getComputedStyle(document.getElementById('dropzone')).outlineStyle")).toBe('solid');
    await page.keyboard.press('Space');
    const chooser = await chosen;
    await chooser.setFiles({ name: 'typed.txt', mimeType: 'text/plain', buffer: Buffer.from('by keyboard') });
    expect(await uploadOutcome('typed.txt')).toMatchObject({ state: 'done' });
    await fileRow('typed.txt').waitFor();
  });

  it('uploads files dropped on the drop zone', async () => {
    await openPage();
    const files = await page.evaluateHandle(`(() => {
      const dt = new DataTransfer();
      dt.items.add(new File(['dropped bytes'], 'dropped.txt', { type: 'text/plain' }));
      return dt;
    })()`);
    await page.locator('#dropzone').dispatchEvent('dragover', { dataTransfer: files });
    await page.locator('#dropzone').dispatchEvent('drop', { dataTransfer: files });
    expect(await uploadOutcome('dropped.txt')).toMatchObject({ state: 'done' });
    await fileRow('dropped.txt').waitFor();
    expect((await apiFiles()).map((f) => f.name)).toEqual(['dropped.txt']);
  });

  it('shows file names as text, never as markup, and runs nothing from them', async () => {
    await openPage();
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.setInputFiles('#file-input', { name: '<img src=x onerror=alert(1)>.txt', mimeType: 'text/plain', buffer: Buffer.from('x') });
    expect(await uploadOutcome('onerror')).toMatchObject({ state: 'done' });
    // A record whose name reached the catalog unsanitized (an older version, another writer).
    await s.catalog.createPending({ id: 'f'.repeat(32), owner: s.owner, originalName: 'raw', name: `<img src=x onerror=alert(2)>"'&.txt`, contentType: 'text/plain', store: 'volume', key: 'ff/none' });
    await s.catalog.setStatus('f'.repeat(32), 'failed', '<b>not bold</b>');
    await page.reload();
    const [{ name }] = await apiFiles().then((files) => files.filter((f) => f.name.includes('alert(1)')));
    expect(await fileRow('alert(1)').locator('.file-name').textContent()).toBe(name);
    expect(await fileRow('alert(2)').locator('.file-name').textContent()).toBe(`<img src=x onerror=alert(2)>"'&.txt`);
    expect(await fileRow('alert(2)').locator('.file-status').textContent()).toBe('Failed<b>not bold</b>');
    expect(await page.locator('main img, main b').count()).toBe(0);
    expect(dialogs).toEqual([]);
    expect(await violations()).toEqual([]);
  });

  it('marks files that are missing or failed with their message and offers no download for them', async () => {
    await openPage();
    await page.setInputFiles('#file-input', [
      { name: 'kept.txt', mimeType: 'text/plain', buffer: Buffer.from('kept') },
      { name: 'lost.txt', mimeType: 'text/plain', buffer: Buffer.from('lost') },
    ]);
    await fileRow('kept.txt').waitFor();
    await fileRow('lost.txt').waitFor();
    // The blob vanishes behind the service's back; the next download attempt finds out.
    const lost = (await apiFiles()).find((f) => f.name === 'lost.txt')!;
    const record = await s.catalog.get(s.owner, lost.id);
    await s.store.delete(record!.key);
    expect((await s.api(`/v1/files/${lost.id}/content`)).status).toBe(404);

    await page.reload();
    expect(await fileRow('lost.txt').locator('.file-status').innerText()).toMatch(/^Missing\s+File missing from storage\. Please re-upload it\.$/);
    expect(await fileRow('lost.txt').getByRole('link', { name: /Download/ }).count()).toBe(0);
    expect(await fileRow('lost.txt').getByRole('button', { name: 'Delete lost.txt' }).count()).toBe(1);
    expect(await fileRow('kept.txt').getByRole('link', { name: 'Download kept.txt' }).count()).toBe(1);
  });

  it('looks right on a desktop and on a phone (screenshots in test-artifacts/)', async () => {
    await openPage({ MAX_UPLOAD_BYTES: '64kb' }, { viewport: { width: 1280, height: 900 } });
    await page.setInputFiles('#file-input', [
      { name: 'quarterly-report-2026.pdf', mimeType: 'application/pdf', buffer: randomData(40 * 1024) },
      { name: 'customers.csv', mimeType: 'text/csv', buffer: Buffer.from('id,name\n1,Zoë\n') },
      { name: 'holiday-video.mp4', mimeType: 'video/mp4', buffer: randomData(200 * 1024) },
    ]);
    await fileRow('customers.csv').waitFor();
    await fileRow('quarterly-report-2026.pdf').waitFor();
    await uploadOutcome('holiday-video.mp4');
    const pdf = (await apiFiles()).find((f) => f.name.endsWith('.pdf'))!;
    await s.catalog.setStatus(pdf.id, 'missing', 'File missing from storage. Please re-upload it.');
    await page.reload();
    await page.setInputFiles('#file-input', [
      { name: 'holiday-video.mp4', mimeType: 'video/mp4', buffer: randomData(200 * 1024) },
      { name: 'meeting-notes.txt', mimeType: 'text/plain', buffer: Buffer.from('agenda') },
    ]);
    await uploadOutcome('holiday-video.mp4');
    await uploadOutcome('meeting-notes.txt');
    await fileRow('meeting-notes.txt').waitFor();
    await saveScreenshot(page, 'page-desktop.png');

    await page.setViewportSize({ width: 390, height: 844 });
    // Nothing is wider than a phone's screen: no sideways scrolling.
    expect(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth')).toBe(true);
    await saveScreenshot(page, 'page-phone.png');
    expect(await uploadRow('holiday-video.mp4').isVisible()).toBe(true);
    expect(await violations()).toEqual([]);
  });
});
