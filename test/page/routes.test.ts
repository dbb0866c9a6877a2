import fs from 'node:fs';
import request from 'supertest';
import { REPORT_TASK } from '../../src/tasks/report-task';
import { CONTENT_SECURITY_POLICY } from '../../src/web/security-headers';
import { allRecords } from '../helpers/app';
import { type PageServer, startPageServer } from '../helpers/browser';

// The page server: loopback dev mode, as the quick start runs (no key; requests act as `local`).
let t: PageServer;
beforeEach(async () => {
  t = await startPageServer();
});
afterEach(async () => t?.close());

const assetUrls = (page: string) => [...page.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]!);

describe('the page over HTTP', () => {
  it('is HTML with a strict CSP, nosniff, no caching, and only same-origin assets', async () => {
    const res = await request(t.app).get('/');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.headers['content-security-policy']).toBe(CONTENT_SECURITY_POLICY);
    expect(CONTENT_SECURITY_POLICY).not.toMatch(/unsafe|\*|data:/);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['cache-control']).toBe('no-store');
    // No inline script or style for the CSP to have to allow; the one <script> body is JSON data.
    expect(res.text).not.toMatch(/<script>|<script(?![^>]*(src=|type="application\/json"))|style=|<style|\son\w+=/);
    expect(assetUrls(res.text)).toHaveLength(5);
  });

  it('serves assets with a long cache for the current version and revalidation otherwise', async () => {
    const urls = assetUrls((await request(t.app).get('/')).text);
    const [css, js] = ['stowage.css', 'stowage.js'].map((name) => urls.find((u) => u.startsWith(`/assets/${name}?`)));
    const current = await request(t.app).get(js!);
    expect(current.status).toBe(200);
    expect(current.headers['content-type']).toMatch(/^(application|text)\/javascript/);
    expect(current.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(current.headers['x-content-type-options']).toBe('nosniff');

    const stale = await request(t.app).get(css!.replace(/\?v=.*/, '?v=old'));
    expect(stale.headers['cache-control']).toBe('public, no-cache');
    const again = await request(t.app).get(css!).set('If-None-Match', stale.headers['etag']!);
    expect(again.status).toBe(304);
    expect((await request(t.app).get('/assets/nothing.js')).status).toBe(404);
  });

  it('serves tus-js-client\'s browser build from the installed package, and nothing else of it', async () => {
    const url = assetUrls((await request(t.app).get('/')).text).find((u) => u.startsWith('/assets/tus.min.js?'))!;
    const res = await request(t.app).get(url).buffer(true).parse((r, done) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c)).on('end', () => done(null, Buffer.concat(chunks)));
    });
    expect(res.status).toBe(200);
    expect((res.body as Buffer).equals(fs.readFileSync(require.resolve('tus-js-client/dist/tus.min.js')))).toBe(true);
    expect(res.headers['content-type']).toMatch(/^(application|text)\/javascript/);
    expect(res.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(res.headers['content-security-policy']).toBe(CONTENT_SECURITY_POLICY);
    const stale = await request(t.app).get('/assets/tus.min.js?v=old');
    expect(stale.headers['cache-control']).toBe('public, no-cache');
    expect((await request(t.app).get('/assets/tus.min.js').set('If-None-Match', stale.headers['etag']!)).status).toBe(304);
    for (const other of ['/assets/tus.js', '/assets/tus.min.js.map', '/assets/constructor']) expect((await request(t.app).get(other)).status).toBe(404);
  });

  it('refuses form posts from other sites (CSRF) and keeps the JSON API as it was', async () => {
    const upload = await request(t.app)
      .post('/upload')
      .set('Sec-Fetch-Site', 'cross-site')
      .attach('file', Buffer.from('x'), 'x.txt');
    expect(upload.status).toBe(403);
    expect(upload.text).toContain('This form was sent from another site, so it was refused.');
    const legacy = await request(t.app).post('/upload').set('Origin', 'https://evil.example').attach('file', Buffer.from('x'), 'x.txt');
    expect(legacy.status).toBe(403);
    expect(await allRecords(t.db)).toEqual([]);

    const api = await request(t.app).post('/v1/files').attach('file', Buffer.from('kept'), 'kept.txt');
    expect(api.status).toBe(201);
    const id = api.body.files[0].id as string;
    const del = await request(t.app).post(`/delete/${id}`).set('Sec-Fetch-Site', 'same-site');
    expect(del.status).toBe(403);
    expect((await request(t.app).get(`/v1/files/${id}`)).status).toBe(200);
    const own = await request(t.app).post(`/delete/${id}`).set('Sec-Fetch-Site', 'same-origin');
    expect(own.status).toBe(303);
    expect(own.headers['location']).toBe('/?deleted=1');
    expect((await request(t.app).get(`/v1/files/${id}`)).status).toBe(404);
    expect((await request(t.app).get('/v1/nothing')).body.error.code).toBe('route_not_found');
  });

  it('escapes every stored string it renders and answers a bad cursor with a readable page', async () => {
    await t.catalog.createPending({ id: 'a'.repeat(32), owner: t.owner, originalName: 'x', name: '</td><script>alert(1)</script>"&.txt', contentType: 'text/plain"><b>', store: 'volume', key: 'aa/none' });
    const page = (await request(t.app).get('/')).text;
    expect(page).toContain('&lt;/td&gt;&lt;script&gt;alert(1)&lt;/script&gt;&quot;&amp;.txt');
    expect(page).toContain('text/plain&quot;&gt;&lt;b&gt;');
    expect(page).not.toContain('<script>alert');

    const bad = await request(t.app).get('/?cursor=nonsense');
    expect(bad.status).toBe(400);
    expect(bad.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(bad.text).toContain('The cursor is not one this API returned.');
  });
});

describe('the report form over HTTP', () => {
  const upload = async (name: string, type: string) =>
    (await request(t.app).post('/v1/files').attach('file', Buffer.from('a,b\n1,2\n'), { filename: name, contentType: type })).body.files[0].id as string;

  it('offers only ready CSV and XLSX files, by type or by name', async () => {
    await upload('by-type', 'text/csv');
    await upload('Windows.CSV', 'application/vnd.ms-excel');
    await upload('book.xlsx', 'application/octet-stream');
    await upload('notes.txt', 'text/plain');
    await t.catalog.createPending({ id: 'b'.repeat(32), owner: t.owner, originalName: 'x', name: 'half.csv', contentType: 'text/csv', store: 'volume', key: 'bb/none' });
    // Another owner's ready CSV.
    await t.catalog.createPending({ id: 'c'.repeat(32), owner: 'bob', originalName: 'bobs.csv', name: 'bobs.csv', contentType: 'text/csv', store: 'volume', key: 'cc/none' });
    await t.catalog.setStatus('c'.repeat(32), 'ready', null);
    const page = (await request(t.app).get('/')).text;
    const options = [...page.matchAll(/<option value="[0-9a-f]{32}">([^ ]+) /g)].map((m) => m[1]);
    expect(options.sort()).toEqual(['Windows.CSV', 'book.xlsx', 'by-type']);
  });

  it('queues a report from a same-origin post, refuses other sites, and explains a bad post on the page', async () => {
    const source = await upload('data.csv', 'text/csv');
    const form = { source, format: 'csv', title: 'Data' };
    const cross = await request(t.app).post('/report').set('Sec-Fetch-Site', 'cross-site').type('form').send(form);
    expect(cross.status).toBe(403);
    expect(cross.text).toMatch(/id="report-notice"[^>]*><p class="notice notice-error">This form was sent from another site/);
    expect(await t.db.selectFrom('tasks').selectAll().execute()).toEqual([]);

    const none = await request(t.app).post('/report').type('form').send({ ...form, source: '' });
    expect(none.status).toBe(400);
    expect(none.text).toContain('Choose a file to make the report from.');
    const gone = await request(t.app).post('/report').type('form').send({ ...form, source: 'f'.repeat(32) });
    expect(gone.status).toBe(404);
    expect(gone.text).toContain('That file no longer exists. Choose another one.');
    const bad = await request(t.app).post('/report').type('form').send({ ...form, format: 'docx' });
    expect(bad.status).toBe(422);
    expect(bad.text).toContain('Invalid report request: format:');

    const ok = await request(t.app).post('/report').set('Sec-Fetch-Site', 'same-origin').type('form').send(form);
    expect(ok.status).toBe(303);
    const [task] = await t.db.selectFrom('tasks').selectAll().execute();
    expect(ok.headers['location']).toBe(`/?task=${task!.id}`);
    expect(JSON.parse(task!.payload)).toMatchObject({ kind: 'source', format: 'csv', title: 'Data', source: { fileId: source } });
  });

  it('shows a task page with every stored string escaped, and a readable 404 for another task', async () => {
    const source = await upload('data.csv', 'text/csv');
    const res = await request(t.app).post('/report').type('form').send({ source, format: 'xlsx', title: '<script>alert(1)</script>' });
    const id = res.headers['location']!.split('=')[1]!;
    await t.db
      .updateTable('tasks')
      .set({ status: 'failed', error_code: 'source_rejected', error_message: '<b>bad</b> & "worse"', log: JSON.stringify([{ at: '2026-01-01T00:00:00.000Z', message: '<img src=x onerror=alert(2)>' }]) })
      .where('id', '=', id)
      .execute();
    const page = await request(t.app).get(`/?task=${id}`);
    expect(page.status).toBe(200);
    expect(page.text).toContain('&lt;script&gt;alert(1)&lt;/script&gt; – Excel (.xlsx)');
    expect(page.text).toContain('<li>&lt;img src=x onerror=alert(2)&gt;</li>');
    expect(page.text).toContain('&lt;b&gt;bad&lt;/b&gt; &amp; &quot;worse&quot;');
    expect(page.text).not.toMatch(/<script>alert|<img|<b>/);
    // A finished task: nothing makes the page reload itself.
    expect(page.text).not.toContain('http-equiv="refresh"');

    for (const other of ['0'.repeat(32), 'nonsense']) {
      const missing = await request(t.app).get(`/?task=${other}`);
      expect(missing.status).toBe(404);
      expect(missing.text).toContain('That report is not here any more. Make a new one below.');
    }
    const bobs = await t.queue.enqueue(REPORT_TASK, 'bob', { kind: 'source', format: 'csv', title: 'Bob’s', source: { fileId: source } });
    const notMine = await request(t.app).get(`/?task=${bobs.id}`);
    expect(notMine.status).toBe(404);
    expect(notMine.text).toContain('That report is not here any more. Make a new one below.');
    // Nor can the page be asked for another owner's view.
    const asBob = await request(t.app).get(`/?task=${bobs.id}`).set('X-Owner', 'bob');
    expect(asBob.status).toBe(403);
    expect(asBob.text).not.toContain('Bob’s');
  });
});
