import request from 'supertest';
import { CONTENT_SECURITY_POLICY } from '../../src/web/security-headers';
import { allRecords, buildTestApp, type TestApp } from '../helpers/app';

let t: TestApp;
beforeEach(async () => {
  t = await buildTestApp();
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
    expect(assetUrls(res.text)).toHaveLength(3);
  });

  it('serves assets with a long cache for the current version and revalidation otherwise', async () => {
    const [, css, js] = assetUrls((await request(t.app).get('/')).text);
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
    await t.catalog.createPending({ id: 'a'.repeat(32), owner: 'anonymous', originalName: 'x', name: '</td><script>alert(1)</script>"&.txt', contentType: 'text/plain"><b>', store: 'volume', key: 'aa/none' });
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
