import fsp from 'node:fs/promises';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import * as XLSX from 'xlsx';
import { launchChromium, type PageServer, saveScreenshot, startPageServer, watchForViolations } from '../helpers/browser';

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

async function openPage(options: { javaScriptEnabled?: boolean } = {}) {
  s = await startPageServer();
  context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 }, ...options });
  page = await context.newPage();
  page.setDefaultTimeout(15_000);
  violations = await watchForViolations(page);
  await page.goto(`${s.url}/`);
}

const SALES_CSV = 'Customer,Quantity,Price\nZoë Ødegård,3,12.5\nДмитрий,10,0.99\nAda,1,100\n';
const panel = () => page.locator('#report-task');
const finishedPanel = () => page.locator('#report-task[data-status="succeeded"], #report-task[data-status="failed"]');

/** Uploads through the page's own upload form and waits until the report form offers the file. */
async function uploadThroughPage(name: string, buffer: Buffer, mimeType = 'text/csv'): Promise<void> {
  await page.setInputFiles('#file-input', { name, mimeType, buffer });
  await page.locator('#report-source option', { hasText: name }).waitFor({ state: 'attached' });
}

/** Fills in the report form as a person would: the file by its name, a format, a title. */
async function fillReportForm(source: string, format: string, title: string): Promise<void> {
  const value = await page.locator('#report-source option', { hasText: source }).getAttribute('value');
  await page.getByLabel('From file').selectOption(value!);
  await page.getByLabel(format, { exact: true }).check();
  await page.getByLabel('Title').fill(title);
}

/** Downloads one of the finished report's files through its link in the report panel. */
async function download(linkName: string): Promise<{ name: string; bytes: Buffer }> {
  const [file] = await Promise.all([page.waitForEvent('download'), panel().getByRole('link', { name: linkName }).click()]);
  return { name: file.suggestedFilename(), bytes: await fsp.readFile((await file.path())!) };
}

describe('the report form with JavaScript', () => {
  it('turns an uploaded CSV into an Excel report, following its progress live, and downloads it', async () => {
    await openPage();
    // Nothing to make a report from yet, and the form says so.
    expect(await page.getByLabel('From file').innerText()).toBe('No CSV or Excel files yet: upload one above');
    await uploadThroughPage('sales.csv', Buffer.from(SALES_CSV));
    await fillReportForm('sales.csv', 'Excel (.xlsx)', 'Sales Q3');
    const sourceId = await page.getByLabel('From file').inputValue();
    await page.getByRole('button', { name: 'Make the report' }).click();

    // The worker is not running yet: the task waits in the queue with an empty bar, and says why.
    await page.locator('#report-task[data-status="queued"]').waitFor();
    expect(await panel().locator('.report-title').innerText()).toBe('Sales Q3 – Excel (.xlsx)');
    expect(await panel().locator('.report-status').innerText()).toBe('Waiting: no worker is running to build it. It starts when one does.');
    expect(await panel().getByRole('progressbar', { name: 'Report progress' }).getAttribute('value')).toBe('0');
    expect(new URL(page.url()).searchParams.get('task')).toMatch(/^[0-9a-f]{32}$/);

    // Reloading shows the same task, rendered by the server, and the page follows it from there.
    await page.reload();
    expect(await panel().getAttribute('data-status')).toBe('queued');
    expect(await panel().locator('.report-title').innerText()).toBe('Sales Q3 – Excel (.xlsx)');
    await page.getByLabel('From file').selectOption(sourceId);
    // Marks this document: if anything reloaded the page (the no-JavaScript refresh), it would be gone.
    await page.evaluate('window.__samePage = true');
    s.startWorker();
    await finishedPanel().waitFor();
    expect(await panel().getAttribute('data-status')).toBe('succeeded');
    expect(await panel().locator('.report-status').innerText()).toBe('Done: your report is ready.');
    expect(await panel().getByRole('progressbar', { name: 'Report progress' }).getAttribute('value')).toBe('100');
    // Each step the worker reported, in the live region, in order.
    expect(await panel().locator('.report-log[aria-live="polite"] li').allInnerTexts()).toEqual([
      'Queued.',
      'Reading sales.csv.',
      'Read 3 rows from sales.csv; skipped 0.',
      'Built Sales Q3.xlsx from sales.csv: 3 rows read, 0 skipped.',
    ]);
    expect(await page.evaluate('window.__samePage')).toBe(true);

    const report = await download('Download Sales Q3.xlsx');
    expect(report.name).toBe('Sales Q3.xlsx');
    expect(report.bytes.subarray(0, 2).toString()).toBe('PK');
    const book = XLSX.read(report.bytes, { type: 'buffer' });
    const rows = XLSX.utils.sheet_to_json<unknown[]>(book.Sheets[book.SheetNames[0]!]!, { header: 1 });
    expect(rows).toEqual([
      ['Customer', 'Quantity', 'Price'],
      ['Zoë Ødegård', 3, 12.5],
      ['Дмитрий', 10, 0.99],
      ['Ada', 1, 100],
    ]);
    const log = await download('Download Sales Q3-processing-log.txt');
    expect(log.bytes.toString('utf8')).toContain('Rows read: 3');

    // The new files are listed, and the workbook can itself be the source of the next report.
    await page.locator('#files tbody tr', { hasText: 'Sales Q3.xlsx' }).waitFor();
    await page.locator('#report-source option', { hasText: 'Sales Q3.xlsx' }).waitFor({ state: 'attached' });
    expect(await page.locator('#report-source option').allInnerTexts()).toEqual([
      expect.stringMatching(/^Sales Q3\.xlsx \([\d.]+ KB, /),
      expect.stringMatching(/^sales\.csv \(79 bytes, /),
    ]);
    // The list was refreshed under the person's choice without changing it.
    expect(await page.getByLabel('From file').inputValue()).toBe(sourceId);
    await saveScreenshot(page, 'report-finished.png');
    expect(await violations()).toEqual([]);
  });

  it('says why a report failed: a binary file named .csv, and a source whose bytes are gone', async () => {
    await openPage();
    s.startWorker();
    await uploadThroughPage('export.csv', Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00, 0x00, 0xff]), 'application/octet-stream');
    await fillReportForm('export.csv', 'PDF', 'Export');
    await page.getByRole('button', { name: 'Make the report' }).click();
    await finishedPanel().waitFor();
    expect(await panel().getAttribute('data-status')).toBe('failed');
    expect(await panel().locator('.report-status').innerText()).toBe('The report could not be made.');
    expect(await panel().locator('.report-error').innerText()).toBe('The file is neither a CSV text file nor an xlsx workbook.');
    expect(await panel().getByRole('link').count()).toBe(0);
    expect(await panel().getByRole('progressbar').isVisible()).toBe(false);

    await uploadThroughPage('lost.csv', Buffer.from('a,b\n1,2\n'));
    const id = await page.locator('#report-source option', { hasText: 'lost.csv' }).getAttribute('value');
    const record = await s.catalog.get(s.owner, id!);
    await s.store.delete(record!.key);
    await fillReportForm('lost.csv', 'CSV', 'Lost');
    await page.getByRole('button', { name: 'Make the report' }).click();
    // The panel starts over for the new report, then ends with the reason.
    await page.locator('#report-task[data-status="failed"] .report-title', { hasText: 'Lost – CSV' }).waitFor();
    expect(await panel().locator('.report-error').innerText()).toBe('File missing from storage. Please re-upload it.');
    await saveScreenshot(page, 'report-failed.png');
    expect(await violations()).toEqual([]);
  });

  it('refuses a source deleted after the page was loaded, with a message and no task', async () => {
    await openPage();
    await uploadThroughPage('gone.csv', Buffer.from('a\n1\n'));
    await fillReportForm('gone.csv', 'CSV', 'Gone');
    const id = await page.getByLabel('From file').inputValue();
    expect((await s.api(`/v1/files/${id}`, { method: 'DELETE' })).status).toBe(204);
    await page.getByRole('button', { name: 'Make the report' }).click();
    await page.locator('#report-notice', { hasText: 'That file no longer exists. Choose another one.' }).waitFor();
    expect(await panel().isHidden()).toBe(true);
    expect(await s.db.selectFrom('tasks').selectAll().execute()).toEqual([]);
  });
});

describe('the report form without JavaScript', () => {
  it('queues a report with a plain post and shows its status page until it has finished', async () => {
    await openPage({ javaScriptEnabled: false });
    await page.setInputFiles('#file-input', { name: 'sales.csv', mimeType: 'text/csv', buffer: Buffer.from(SALES_CSV) });
    await Promise.all([page.waitForURL(/\?uploaded=/), page.getByRole('button', { name: 'Upload' }).click()]);
    await fillReportForm('sales.csv', 'Excel (.xlsx)', 'Sales Q3');
    const [post] = await Promise.all([
      page.waitForResponse((r) => r.request().isNavigationRequest() && r.request().method() === 'POST'),
      page.getByRole('button', { name: 'Make the report' }).click(),
    ]);
    expect(post.status()).toBe(303);
    await page.waitForURL(/\/\?task=[0-9a-f]{32}$/);

    // Queued (no worker yet): the page says so and will reload itself.
    expect(await panel().getAttribute('data-status')).toBe('queued');
    expect(await panel().locator('.report-status').innerText()).toBe('Waiting: no worker is running to build it. It starts when one does.');
    expect(await page.locator('head meta[http-equiv="refresh"]').count()).toBe(1);

    s.startWorker();
    // The page reloads itself (meta refresh) until the report is done; the wait spans reloads.
    await page.waitForSelector('#report-task[data-status="succeeded"]');
    expect(await panel().locator('.report-status').innerText()).toBe('Done: your report is ready.');
    expect(await panel().getByRole('progressbar').getAttribute('value')).toBe('100');
    expect(await panel().locator('.report-log li').last().innerText()).toBe('Built Sales Q3.xlsx from sales.csv: 3 rows read, 0 skipped.');
    expect(await page.locator('head meta[http-equiv="refresh"]').count()).toBe(0);
    const report = await download('Download Sales Q3.xlsx');
    expect(report.bytes.subarray(0, 2).toString()).toBe('PK');
    expect(XLSX.read(report.bytes, { type: 'buffer' }).SheetNames).toHaveLength(1);
  });
});
