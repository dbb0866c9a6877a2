import fsp from 'node:fs/promises';
import request from 'supertest';
import { Links } from '../../src/auth/links';
import { Signer } from '../../src/auth/signed-tokens';
import { buildTestApp, TEST_SECRET_KEY, type TestApp } from '../helpers/app';
import { makeTempDir } from '../helpers/tmp';
import { binary, randomData, sha256 } from '../helpers/streams';
import { sessionCookie } from '../helpers/session';

let t: TestApp;
/** Directories kept across apps in one test, removed after the last app closed. */
const dirs: string[] = [];
afterEach(async () => {
  await t?.close();
  await Promise.all(dirs.splice(0).map((d) => fsp.rm(d, { recursive: true, force: true })));
});

/** Uploads one file as `owner` and answers its id. */
async function uploadAs(owner: string, name: string, data: Buffer, type = 'text/plain'): Promise<string> {
  const res = await t.http(owner).post('/v1/files').attach('file', data, { filename: name, contentType: type });
  expect(res.status).toBe(201);
  return res.body.files[0].id as string;
}

/** A download link's path (the URL is absolute, to wherever supertest's server listened). */
async function downloadLink(owner: string, id: string, body: object = {}): Promise<{ path: string; expiresAt: string }> {
  const res = await t.http(owner).post(`/v1/files/${id}/links`).send(body);
  expect(res.status).toBe(201);
  expect(res.body.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1\/links\/[\w-]+\.[\w-]{43}$/);
  return { path: new URL(res.body.url as string).pathname, expiresAt: res.body.expiresAt as string };
}

const anonymous = () => request(t.app);

/** The token with one character of its payload changed (still valid base64url). */
function tampered(path: string): string {
  const token = path.split('/').pop()!;
  const i = 5;
  const swapped = token[i] === 'A' ? 'B' : 'A';
  return path.replace(token, token.slice(0, i) + swapped + token.slice(i + 1));
}

describe('download links', () => {
  beforeEach(async () => {
    t = await buildTestApp();
  });

  it('download without credentials, with ranges, conditional requests and HEAD, sandboxed', async () => {
    const data = randomData(100_000);
    const id = await uploadAs('alice', 'photo.bin', data, 'application/octet-stream');
    const link = await downloadLink('alice', id, { expiresIn: '1h' });
    const expires = Date.parse(link.expiresAt);
    expect(expires).toBeGreaterThan(Date.now() + 3599_000 - 2000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 3600_000);

    const whole = await anonymous().get(link.path).buffer(true).parse(binary);
    expect(whole.status).toBe(200);
    expect(sha256(whole.body as Buffer)).toBe(sha256(data));
    expect(whole.headers['content-disposition']).toBe('attachment; filename=photo.bin');
    expect(whole.headers['content-security-policy']).toBe('sandbox');
    expect(whole.headers['x-content-type-options']).toBe('nosniff');
    expect(whole.headers['referrer-policy']).toBe('no-referrer');
    expect(whole.headers['accept-ranges']).toBe('bytes');

    const range = await anonymous().get(link.path).set('Range', 'bytes=1000-1999').buffer(true).parse(binary);
    expect(range.status).toBe(206);
    expect(range.headers['content-range']).toBe(`bytes 1000-1999/${data.length}`);
    expect((range.body as Buffer).equals(data.subarray(1000, 2000))).toBe(true);
    const suffix = await anonymous().get(link.path).set('Range', 'bytes=-10').buffer(true).parse(binary);
    expect((suffix.body as Buffer).equals(data.subarray(-10))).toBe(true);
    expect((await anonymous().get(link.path).set('Range', 'bytes=200000-')).status).toBe(416);

    const etag = whole.headers.etag!;
    expect((await anonymous().get(link.path).set('If-None-Match', etag)).status).toBe(304);
    const stale = await anonymous().get(link.path).set('Range', 'bytes=0-9').set('If-Range', '"other"').buffer(true).parse(binary);
    expect(stale.status).toBe(200);

    const head = await anonymous().head(link.path);
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(String(data.length));
    // Credentials that don't prove anything change nothing: the link is the permission.
    expect((await anonymous().get(link.path).set('Authorization', 'Bearer stw_nonsense')).status).toBe(200);

    // The request log keeps what the link is for, never what makes it work.
    const [payload, signature] = link.path.split('/').pop()!.split('.');
    expect(JSON.stringify(t.logs.lines)).not.toContain(signature);
    expect(t.logs.lines.some((l) => (l.req as { url?: string } | undefined)?.url === `/v1/links/${payload}.<signature>`)).toBe(true);
  });

  it('honour inline only for types safe to show; every download is sandboxed', async () => {
    const cases: [string, string, string][] = [
      ['shot.png', 'image/png', 'inline'],
      ['paper.pdf', 'application/pdf', 'inline'],
      ['notes.txt', 'text/plain', 'inline'],
      ['page.html', 'text/html', 'attachment'],
      ['logo.svg', 'image/svg+xml', 'attachment'],
      ['app.js', 'application/javascript', 'attachment'],
    ];
    for (const [name, type, expected] of cases) {
      const id = await uploadAs('alice', name, Buffer.from('x'), type);
      const link = await downloadLink('alice', id, { disposition: 'inline' });
      const res = await anonymous().get(link.path);
      expect({ name, disposition: res.headers['content-disposition'], csp: res.headers['content-security-policy'] }).toEqual({
        name,
        disposition: `${expected}; filename=${name}`,
        csp: 'sandbox',
      });
      // The API's own download is always an attachment, sandboxed too.
      const own = await t.http('alice').get(`/v1/files/${id}/content`);
      expect([own.headers['content-disposition'], own.headers['content-security-policy']]).toEqual([`attachment; filename=${name}`, 'sandbox']);
    }
  });

  it('refuse a tampered, truncated or foreign token with 403 link_invalid', async () => {
    const id = await uploadAs('alice', 'a.txt', Buffer.from('secret of alice'));
    const other = await uploadAs('alice', 'b.txt', Buffer.from('another file'));
    const link = await downloadLink('alice', id);
    const token = link.path.split('/').pop()!;
    const [payload, mac] = token.split('.');

    // A payload naming another file (or another disposition), with the original signature.
    const edited = (change: (p: Record<string, unknown>) => void) => {
      const p = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>;
      change(p);
      return `/v1/links/${Buffer.from(JSON.stringify(p)).toString('base64url')}.${mac}`;
    };
    const otherMac = mac![0] === 'A' ? `B${mac!.slice(1)}` : `A${mac!.slice(1)}`;
    const lastChar = mac!.endsWith('A') ? `${mac!.slice(0, -1)}B` : `${mac!.slice(0, -1)}A`;
    for (const path of [
      tampered(link.path),
      edited((p) => (p.f = other)),
      edited((p) => (p.d = 'inline')),
      edited((p) => (p.e = Number(p.e) + 3600)),
      edited((p) => (p.o = 'bob')),
      `/v1/links/${payload}.${otherMac}`,
      `/v1/links/${payload}.${lastChar}`,
      `/v1/links/${token.slice(0, -1)}`,
      `/v1/links/${payload}`,
      '/v1/links/nonsense',
      `/v1/links/${'a'.repeat(5000)}.${mac}`,
    ]) {
      const res = await anonymous().get(path);
      expect({ path, status: res.status, code: res.body.error?.code }).toEqual({ path, status: 403, code: 'link_invalid' });
    }
    // Signed for another purpose with the same key: a page link's token is not a download link.
    const page = (await t.http('alice').post('/v1/page-links').send({})).body.url as string;
    expect((await anonymous().get(`/v1/links/${page.split('/').pop()}`)).status).toBe(403);
    // A person who follows a broken link reads a page, not JSON.
    const html = await anonymous().get(tampered(link.path)).set('Accept', 'text/html,*/*;q=0.8');
    expect(html.status).toBe(403);
    expect(html.headers['content-type']).toMatch(/^text\/html/);
    expect(html.text).toContain('This link does not work');
  });

  it('answer 410 link_expired once past the expiry; lifetimes are checked', async () => {
    const id = await uploadAs('alice', 'a.txt', Buffer.from('hello'));
    // A link made an hour ago for 30 minutes, signed with the server's key.
    const past = new Links(new Signer([TEST_SECRET_KEY]), () => Date.now() - 3600_000);
    const token = past.download({ owner: 'alice', fileId: id, disposition: 'attachment', expiresAt: past.expiryIn(30 * 60_000) });
    const res = await anonymous().get(`/v1/links/${token}`);
    expect(res.status).toBe(410);
    expect(res.body.error.code).toBe('link_expired');
    // The same link, made with an hour and a half to run, still works.
    const longer = past.download({ owner: 'alice', fileId: id, disposition: 'attachment', expiresAt: past.expiryIn(90 * 60_000) });
    expect((await anonymous().get(`/v1/links/${longer}`)).text).toBe('hello');

    for (const expiresIn of ['8d', '0s', 'soon', -5, 0.5]) {
      const bad = await t.http('alice').post(`/v1/files/${id}/links`).send({ expiresIn });
      expect({ expiresIn, status: bad.status, code: bad.body.error.code }).toEqual({ expiresIn, status: 422, code: 'invalid_link_request' });
    }
    const bad = await t.http('alice').post(`/v1/files/${id}/links`).send({ disposition: 'download' });
    expect(bad.status).toBe(422);
    // Seconds as a number, and no body at all (one hour, attachment).
    const numeric = await t.http('alice').post(`/v1/files/${id}/links`).send({ expiresIn: 90 });
    expect(Date.parse(numeric.body.expiresAt as string)).toBeLessThanOrEqual(Date.now() + 90_000);
    const bare = await t.http('alice').post(`/v1/files/${id}/links`);
    expect(bare.status).toBe(201);
  });

  it('answer 404 once the file is deleted', async () => {
    const id = await uploadAs('alice', 'a.txt', Buffer.from('hello'));
    const link = await downloadLink('alice', id);
    expect((await t.http('alice').delete(`/v1/files/${id}`)).status).toBe(204);
    const res = await anonymous().get(link.path);
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('not_found');
  });

  it("are refused for another owner's file exactly as for an id that never existed", async () => {
    const id = await uploadAs('alice', 'a.txt', Buffer.from('hello'));
    const theirs = await t.http('bob').post(`/v1/files/${id}/links`).send({});
    const none = await t.http('bob').post(`/v1/files/${'0'.repeat(32)}/links`).send({});
    expect(theirs.status).toBe(404);
    expect([theirs.body.error.code, theirs.body.error.message]).toEqual([none.body.error.code, none.body.error.message]);
    // A read key may not make links; a service key acting for alice may.
    expect((await t.withToken(await t.key('alice', 'read')).post(`/v1/files/${id}/links`).send({})).status).toBe(403);
    const service = await t.withToken(await t.key('ops', 'service')).post(`/v1/files/${id}/links`).set('X-Owner', 'alice').send({});
    expect(service.status).toBe(201);
    expect((await anonymous().get(new URL(service.body.url as string).pathname)).text).toBe('hello');
    expect((await anonymous().post(`/v1/files/${id}/links`).send({})).status).toBe(401);
  });
});

describe('SECRET_KEY rotation', () => {
  it('keeps links signed with SECRET_KEY_PREVIOUS working, and ends those signed with a key no longer listed', async () => {
    const dir = await makeTempDir();
    dirs.push(dir);
    const k1 = 'first-secret-key-0123456789abcdefghijklmnop';
    const k2 = 'second-secret-key-0123456789abcdefghijklmno';
    const k3 = 'third-secret-key-0123456789abcdefghijklmnop';
    t = await buildTestApp({ SECRET_KEY: k1 }, dir);
    const id = await uploadAs('alice', 'a.txt', Buffer.from('rotated'));
    const old = await downloadLink('alice', id);
    const oldSession = sessionCookie(t, 'alice');
    await t.close();

    t = await buildTestApp({ SECRET_KEY: k2, SECRET_KEY_PREVIOUS: k1 }, dir);
    expect((await anonymous().get(old.path)).text).toBe('rotated');
    expect((await anonymous().get('/v1/files').set('Cookie', oldSession)).status).toBe(200);
    const current = await downloadLink('alice', id);
    await t.close();

    t = await buildTestApp({ SECRET_KEY: k3, SECRET_KEY_PREVIOUS: k2 }, dir);
    const ended = await anonymous().get(old.path);
    expect([ended.status, ended.body.error.code]).toEqual([403, 'link_invalid']);
    expect((await anonymous().get('/v1/files').set('Cookie', oldSession)).status).toBe(401);
    expect((await anonymous().get(current.path)).text).toBe('rotated');
  });

  it('signs with a random key of the process on a loopback server without SECRET_KEY', async () => {
    t = await buildTestApp({ HOST: '127.0.0.1', SECRET_KEY: '' });
    expect(t.config.auth.secretKeys).toEqual([]);
    expect(t.resources.links.ephemeral).toBe(true);
    const id = await uploadAs('alice', 'a.txt', Buffer.from('local'));
    const link = await downloadLink('alice', id);
    expect((await anonymous().get(link.path)).text).toBe('local');
    // Signed with TEST_SECRET_KEY, as another process would: not accepted here.
    const foreign = new Links(new Signer([TEST_SECRET_KEY])).download({ owner: 'alice', fileId: id, disposition: 'attachment', expiresAt: new Date(Date.now() + 60_000) });
    expect((await anonymous().get(`/v1/links/${foreign}`)).status).toBe(403);
  });
});

describe('upload links', () => {
  beforeEach(async () => {
    t = await buildTestApp({ MAX_UPLOAD_BYTES: '1mb', MAX_FILES_PER_REQUEST: '5' });
  });

  async function uploadLink(body: object, token = t.http('alice')) {
    const res = await token.post('/v1/upload-links').send(body);
    return res;
  }

  it('take multipart uploads for the owner without credentials, within the limits, from any origin', async () => {
    const created = await uploadLink({ expiresIn: '2h', maxBytes: 1000, maxFiles: 2, allowedTypes: ['image/*', 'text/plain'] });
    expect(created.status).toBe(201);
    const { url, pageUrl, expiresAt } = created.body as { url: string; pageUrl: string; expiresAt: string };
    expect(url).toMatch(/\/v1\/upload-links\/[\w-]+\.[\w-]{43}$/);
    expect(pageUrl).toBe(url);
    expect(Date.parse(expiresAt)).toBeGreaterThan(Date.now() + 7000_000);
    const path = new URL(url).pathname;

    const ok = await anonymous()
      .post(path)
      .set('Origin', 'https://elsewhere.example')
      .attach('file', Buffer.from('a picture'), { filename: 'p.png', contentType: 'image/png' })
      .attach('file', Buffer.from('some notes'), { filename: 'n.txt', contentType: 'text/plain' });
    expect(ok.status).toBe(201);
    expect(ok.headers['access-control-allow-origin']).toBe('*');
    expect(ok.body.files.map((f: { name: string }) => f.name)).toEqual(['p.png', 'n.txt']);
    const listed = await t.http('alice').get('/v1/files');
    expect(listed.body.files.map((f: { name: string }) => f.name).sort()).toEqual(['n.txt', 'p.png']);

    const tooBig = await anonymous().post(path).attach('file', Buffer.alloc(1001, 'x'), { filename: 'big.png', contentType: 'image/png' });
    expect([tooBig.status, tooBig.body.error.code]).toEqual([413, 'file_too_large']);
    expect(tooBig.body.error.message).toBe('A file is larger than this upload link allows (1000 bytes).');
    const tooMany = await anonymous()
      .post(path)
      .attach('file', Buffer.from('1'), { filename: '1.txt', contentType: 'text/plain' })
      .attach('file', Buffer.from('2'), { filename: '2.txt', contentType: 'text/plain' })
      .attach('file', Buffer.from('3'), { filename: '3.txt', contentType: 'text/plain' });
    expect([tooMany.status, tooMany.body.error.code]).toEqual([413, 'too_many_files']);
    const wrongType = await anonymous().post(path).attach('file', Buffer.from('%PDF'), { filename: 'x.pdf', contentType: 'application/pdf' });
    expect([wrongType.status, wrongType.body.error.code]).toEqual([415, 'unsupported_file_type']);
    expect(wrongType.headers['access-control-allow-origin']).toBe('*');
    // Nothing of the refused uploads was kept.
    expect((await t.http('alice').get('/v1/files')).body.files).toHaveLength(2);
    expect(await t.storedFiles()).toHaveLength(2);

    expect((await anonymous().post(tampered(path)).attach('file', Buffer.from('x'), 'x.txt')).status).toBe(403);
    // The link's token is not a bearer token: it uploads, and does nothing else.
    const asBearer = await anonymous().get('/v1/files').set('Authorization', `Bearer ${path.split('/').pop()}`);
    expect([asBearer.status, asBearer.body.error.code]).toEqual([401, 'token_invalid']);
  });

  it('answer a browser form with a page saying what was stored', async () => {
    const path = new URL((await uploadLink({})).body.url as string).pathname;
    const res = await anonymous()
      .post(path)
      .set('Accept', 'text/html,application/xhtml+xml,*/*;q=0.8')
      .attach('file', Buffer.from('<b>hi</b>'), { filename: 'Q&A <draft>.txt', contentType: 'text/plain' });
    expect(res.status).toBe(201);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.text).toContain('Uploaded 1 file');
    expect(res.text).toContain('<span class="file-name">Q&amp;A _draft_.txt</span> (9 bytes)');
    const refused = await anonymous().post(path).set('Accept', 'text/html').field('note', 'no file');
    expect(refused.status).toBe(400);
    expect(refused.text).toContain('Choose at least one file to upload.');
  });

  it('expire, and are checked against the server and the caller when made', async () => {
    const past = new Links(new Signer([TEST_SECRET_KEY]), () => Date.now() - 7200_000);
    const token = past.upload({ owner: 'alice', grant: { maxBytes: 10, maxFiles: 1, allowedTypes: [] }, expiresAt: past.expiryIn(3600_000) });
    const expired = await anonymous().post(`/v1/upload-links/${token}`).attach('file', Buffer.from('x'), 'x.txt');
    expect([expired.status, expired.body.error.code]).toEqual([410, 'link_expired']);
    expect(await t.storedFiles()).toEqual([]);

    const over = await uploadLink({ maxBytes: 2 * 1024 * 1024, maxFiles: 6 });
    expect(over.status).toBe(422);
    expect(over.body.error.message).toContain('maxBytes: at most 1048576 on this server (MAX_UPLOAD_BYTES)');
    expect(over.body.error.message).toContain('maxFiles: at most 5');
    expect((await uploadLink({ allowedTypes: ['not a type'] })).status).toBe(422);
    expect((await uploadLink({ expiresIn: '30d' })).status).toBe(422);

    const forBob = await uploadLink({ owner: 'bob' });
    expect([forBob.status, forBob.body.error.code]).toEqual([403, 'owner_not_allowed']);
    expect((await uploadLink({}, t.withToken(await t.key('alice', 'read')))).status).toBe(403);
    const service = await uploadLink({ owner: 'bob' }, t.withToken(await t.key('ops', 'service')));
    expect(service.status).toBe(201);
    const sent = await anonymous().post(new URL(service.body.url as string).pathname).attach('file', Buffer.from('for bob'), 'b.txt');
    expect(sent.status).toBe(201);
    expect((await t.http('bob').get('/v1/files')).body.files.map((f: { name: string }) => f.name)).toEqual(['b.txt']);
  });

  it("never accept a type the server doesn't", async () => {
    await t.close();
    t = await buildTestApp({ ALLOWED_CONTENT_TYPES: 'image/png,text/*' });
    const refused = await uploadLink({ allowedTypes: ['image/*'] });
    expect(refused.status).toBe(422);
    expect(refused.body.error.message).toContain('allowedTypes: image/* is not accepted by this server');
    const path = new URL((await uploadLink({ allowedTypes: ['text/*'] })).body.url as string).pathname;
    expect((await anonymous().post(path).attach('file', Buffer.from('x'), { filename: 'x.csv', contentType: 'text/csv' })).status).toBe(201);
    expect((await anonymous().post(path).attach('file', Buffer.from('x'), { filename: 'x.png', contentType: 'image/png' })).status).toBe(415);
  });
});

describe('page links and sessions', () => {
  beforeEach(async () => {
    t = await buildTestApp();
  });

  /** Opens a page link as a browser would and answers the session cookie it set. */
  async function openPageLink(url: string, headers: Record<string, string> = {}) {
    const res = await anonymous().get(new URL(url).pathname).set(headers);
    expect(res.status).toBe(200);
    const cookie = ([] as string[]).concat(res.headers['set-cookie'] ?? [])[0]!;
    return { res, cookie, value: cookie.split(';')[0]! };
  }

  it('set an HttpOnly, SameSite=Strict cookie (Secure over https) that is credentials for the page and the API', async () => {
    await uploadAs('alice', 'mine.txt', Buffer.from('alice'));
    const made = await t.http('alice').post('/v1/page-links').send({ expiresIn: '8h' });
    expect(made.status).toBe(201);
    expect(made.body.url).toMatch(/\/v1\/page-links\/[\w-]+\.[\w-]{43}$/);
    const { res, cookie, value } = await openPageLink(made.body.url as string);
    expect(cookie).toMatch(/^stowage_session=[\w-]+\.[\w-]{43}; Path=\/; Expires=[^;]+; HttpOnly; SameSite=Strict$/);
    expect(Date.parse(/Expires=([^;]+)/.exec(cookie)![1]!)).toBe(Math.floor(Date.parse(made.body.expiresAt as string) / 1000) * 1000);
    expect(res.text).toContain('<meta http-equiv="refresh" content="0; url=/">');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['referrer-policy']).toBe('no-referrer');

    const page = await anonymous().get('/').set('Cookie', value);
    expect(page.status).toBe(200);
    expect(page.text).toContain('mine.txt');
    expect(page.text).toContain('Files of <strong>alice</strong>');
    expect((await anonymous().get('/v1/files').set('Cookie', value)).body.files).toHaveLength(1);

    // Over https (a proxy saying so, trusted): the cookie is Secure too.
    t.app.set('trust proxy', true);
    const secure = await openPageLink(made.body.url as string, { 'X-Forwarded-Proto': 'https' });
    expect(secure.cookie).toMatch(/; Secure;|; Secure$/);
  });

  it('refuse unsafe requests with the cookie from another origin (403 cross_site_form), bearer requests need no such check', async () => {
    const cookie = sessionCookie(t, 'alice');
    const post = (headers: Record<string, string>) =>
      anonymous().post('/v1/files').set('Cookie', cookie).set(headers).attach('file', Buffer.from('x'), 'x.txt');
    for (const headers of [{ 'Sec-Fetch-Site': 'cross-site' }, { 'Sec-Fetch-Site': 'same-site' }, { Origin: 'https://evil.example' }] as Record<string, string>[]) {
      const refused = await post(headers);
      expect({ headers, status: refused.status, code: refused.body.error?.code }).toEqual({ headers, status: 403, code: 'cross_site_form' });
    }
    expect(await t.storedFiles()).toEqual([]);
    expect((await post({ 'Sec-Fetch-Site': 'same-origin' })).status).toBe(201);
    // Reading is fine from anywhere (SameSite keeps other sites from sending the cookie at all).
    expect((await anonymous().get('/v1/files').set('Cookie', cookie).set('Sec-Fetch-Site', 'cross-site')).status).toBe(200);
    const bearer = await t.http('alice').post('/v1/files').set('Sec-Fetch-Site', 'cross-site').attach('file', Buffer.from('y'), 'y.txt');
    expect(bearer.status).toBe(201);
  });

  it("are made for the caller's own owner, or any owner by a service key", async () => {
    expect((await t.http('alice').post('/v1/page-links').send({ owner: 'bob' })).status).toBe(403);
    const made = await t.withToken(await t.key('ops', 'service')).post('/v1/page-links').send({ owner: 'bob', expiresIn: 60 });
    expect(made.status).toBe(201);
    const { value } = await openPageLink(made.body.url as string);
    await uploadAs('bob', 'bobs.txt', Buffer.from('b'));
    expect((await anonymous().get('/v1/files').set('Cookie', value)).body.files[0].name).toBe('bobs.txt');
    const past = new Links(new Signer([TEST_SECRET_KEY]), () => Date.now() - 7200_000);
    const expired = await anonymous().get(`/v1/page-links/${past.page({ owner: 'bob', expiresAt: past.expiryIn(3600_000) })}`).set('Accept', 'text/html');
    expect(expired.status).toBe(410);
    expect(expired.text).toContain('This link has expired');
    expect(expired.headers['set-cookie']).toBeUndefined();
  });

  it("limit an upload link's session to uploading, within the link's limits", async () => {
    await uploadAs('alice', 'private.txt', Buffer.from('not for the uploader'));
    const link = await t.http('alice').post('/v1/upload-links').send({ maxBytes: 100, allowedTypes: ['text/plain'] });
    const { value } = await openPageLink(link.body.pageUrl as string);
    const page = await anonymous().get('/').set('Cookie', value);
    expect(page.status).toBe(200);
    expect(page.text).toContain('id="upload-form"');
    expect(page.text).toContain('Up to 100 bytes per file, text/plain.');
    expect(page.text).not.toContain('private.txt');
    expect(page.text).not.toContain('id="files"');
    expect(page.text).not.toContain('report.js');

    const same = { 'Sec-Fetch-Site': 'same-origin' };
    const up = await anonymous().post('/v1/files').set('Cookie', value).set(same).attach('file', Buffer.from('ok'), { filename: 'ok.txt', contentType: 'text/plain' });
    expect(up.status).toBe(201);
    const big = await anonymous().post('/v1/files').set('Cookie', value).set(same).attach('file', Buffer.alloc(101), { filename: 'big.txt', contentType: 'text/plain' });
    expect(big.status).toBe(413);
    const id = up.body.files[0].id as string;
    for (const [method, path] of [
      ['get', '/v1/files'],
      ['get', `/v1/files/${id}`],
      ['get', `/v1/files/${id}/content`],
      ['delete', `/v1/files/${id}`],
      ['post', '/v1/page-links'],
      ['post', '/v1/upload-links'],
      ['get', '/v1/tasks'],
    ] as const) {
      const res = await anonymous()[method](path).set('Cookie', value).set(same);
      expect({ method, path, status: res.status, code: res.body.error?.code }).toEqual({ method, path, status: 403, code: 'insufficient_scope' });
    }
  });

  it('shows how to get a session when there is none, or it ended', async () => {
    const none = await anonymous().get('/');
    expect(none.status).toBe(401);
    expect(none.text).toContain('This page needs a session');
    expect(none.text).toContain('stowage links page --owner NAME');
    expect(none.text).not.toContain('upload-form');
    expect(none.text).not.toContain('id="files"');
    const ended = await anonymous().get('/').set('Cookie', sessionCookie(t, 'alice', { expiresInMs: -1000 }));
    expect(ended.status).toBe(401);
    expect(ended.text).toContain('Your session has ended');
    const forged = await anonymous().get('/').set('Cookie', `${sessionCookie(t, 'alice').slice(0, -2)}xx`);
    expect(forged.status).toBe(401);
    // A session cookie never stands in for a download or upload link, nor the other way round.
    const asLink = sessionCookie(t, 'alice').split('=')[1];
    expect((await anonymous().get(`/v1/page-links/${asLink}`)).status).toBe(403);
  });
});
