import { allRecords, buildTestApp, type TestApp } from '../helpers/app';
import { CATALOG_DATABASES, useCatalogDatabase } from '../helpers/postgres';

let t: TestApp;
afterEach(async () => t?.close());

describe.each(CATALOG_DATABASES)('PATCH /v1/files/:id (catalog on %s)', (kind) => {
  const database = useCatalogDatabase(kind);
  beforeEach(async () => {
    t = await buildTestApp(await database.env());
  });

  const upload = async (owner = 'alice') => (await t.http(owner).post('/v1/files').attach('file', Buffer.from('hello'), 'hello.txt')).body.files[0];
  const patch = (id: string, body: unknown, owner = 'alice') => t.http(owner).patch(`/v1/files/${id}`).send(body as object);

  it('renames, sets metadata and the expiry, answering the changed record that GET and the list then show', async () => {
    const file = await upload();
    const renamed = await patch(file.id, { name: '../Q3 report\u202e.txt' });
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({ id: file.id, name: 'Q3 report.txt', originalName: '../Q3 report.txt', metadata: {}, expiresAt: null });

    const meta = await patch(file.id, { metadata: { customer: 'c-42', 'ünï': 'çødé' } });
    expect(meta.body.metadata).toEqual({ customer: 'c-42', 'ünï': 'çødé' });
    expect(meta.body.name).toBe('Q3 report.txt');
    // Metadata is replaced whole; null removes it.
    expect((await patch(file.id, { metadata: { b: '2' } })).body.metadata).toEqual({ b: '2' });

    const at = new Date(Date.now() + 3_600_000).toISOString();
    const expiring = await patch(file.id, { expiresAt: at.replace('Z', '+00:00') });
    expect(expiring.body.expiresAt).toBe(at);
    expect((await t.http('alice').get(`/v1/files/${file.id}`)).body).toMatchObject({ name: 'Q3 report.txt', metadata: { b: '2' }, expiresAt: at });
    expect((await t.http('alice').get('/v1/files')).body.files[0]).toMatchObject({ id: file.id, expiresAt: at, metadata: { b: '2' } });

    const forever = await patch(file.id, { expiresAt: null, metadata: null });
    expect(forever.body).toMatchObject({ expiresAt: null, metadata: {} });
    // The download carries the new name.
    expect((await t.http('alice').get(`/v1/files/${file.id}/content`)).headers['content-disposition']).toContain('Q3 report.txt');
  });

  it('a past expiresAt expires the file at once: 410 for downloads, gone from the list', async () => {
    const file = await upload();
    const res = await patch(file.id, { expiresAt: '2020-01-01T00:00:00Z' });
    expect(res.body).toMatchObject({ status: 'expired', expiresAt: '2020-01-01T00:00:00.000Z' });
    expect((await t.http('alice').get(`/v1/files/${file.id}/content`)).status).toBe(410);
    expect((await t.http('alice').get('/v1/files')).body.files).toEqual([]);
    const again = await patch(file.id, { expiresAt: null });
    expect([again.status, again.body.error.code]).toEqual([409, 'file_expired']);
  });

  it('refuses bad changes with 400, too much metadata with 413, and leaves the record as it was', async () => {
    const file = await upload();
    const bad = [{}, { name: '' }, { metadata: { a: 1 } }, { metadata: { a: { b: 'c' } } }, { metadata: ['x'] }, { expiresAt: 'tomorrow' }, { size: 3 }];
    for (const body of bad) {
      const res = await patch(file.id, body);
      expect([res.status, res.body.error.code]).toEqual([400, 'invalid_file_update']);
    }
    const notJson = await t.http('alice').patch(`/v1/files/${file.id}`).set('Content-Type', 'application/json').send('{"name":');
    expect(notJson.status).toBe(400);
    const manyKeys = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v']));
    const tooMany = await patch(file.id, { metadata: manyKeys });
    expect([tooMany.status, tooMany.body.error.code]).toEqual([413, 'metadata_too_large']);
    const tooBig = await patch(file.id, { metadata: { notes: 'x'.repeat(4100) } });
    expect([tooBig.status, tooBig.body.error.code]).toEqual([413, 'metadata_too_large']);
    expect(tooBig.body.error.message).toContain('4096 bytes');
    expect((await t.http('alice').get(`/v1/files/${file.id}`)).body).toMatchObject({ name: 'hello.txt', metadata: {}, expiresAt: null });
  });

  it('is owner-scoped and needs a write key; a pending or expired file answers 409', async () => {
    const file = await upload();
    const other = await patch(file.id, { name: 'mine.txt' }, 'bob');
    expect([other.status, other.body.error.code]).toEqual([404, 'not_found']);
    const reader = await t.key('alice', 'read');
    expect((await t.withToken(reader).patch(`/v1/files/${file.id}`).send({ name: 'x.txt' })).status).toBe(403);

    const pending = await t.files.expect({ owner: 'alice', originalName: 'p.bin', contentType: 'application/octet-stream' });
    const res = await patch(pending.id, { name: 'x.txt' });
    expect([res.status, res.body.error.code]).toEqual([409, 'file_pending']);
    await t.db.updateTable('files').set({ status: 'expired' }).where('id', '=', file.id).execute();
    const expired = await patch(file.id, { metadata: { a: 'b' } });
    expect([expired.status, expired.body.error.code]).toEqual([409, 'file_expired']);
    expect((await allRecords(t.db)).find((r) => r.id === file.id)!.metadata).toBeNull();
  });
});
