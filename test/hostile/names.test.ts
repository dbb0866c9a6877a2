import { allRecords, buildTestApp, type TestApp } from '../helpers/app';
import type { Env } from '../../src/config';
import { CATALOG_DATABASES, useCatalogDatabase } from '../helpers/postgres';
import { BOUNDARY, oneFileForm } from './raw';

/**
 * Hostile file names sent through the real upload route, as a browser or a script can send them:
 * what is stored, listed and answered in Content-Disposition. Both catalog databases: PostgreSQL
 * refuses NUL in text, SQLite does not.
 */
let t: TestApp;
afterEach(async () => t?.close());

/** ASCII controls (NUL, CR, LF, DEL...), C1 controls and Unicode bidi controls. */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;

const HOSTILE: [string, string][] = [
  ['traversal', '../../../etc/passwd'],
  ['Windows traversal', '..\\..\\Windows\\System32\\evil.dll'],
  ['CR/LF as a browser escapes them', 'two%0D%0Alines.txt'],
  ['header injection attempt', 'x.txt%0D%0AContent-Type: text/html'],
  ['bidi override', 'invoice\u202Efdp.exe'],
  ['isolates and marks', '\u2066report\u2069\u200E\u200F\u061C.pdf'],
  ['C1 controls', 'next\u0085line\u009b31mred.txt'],
  ['dots only', '...'],
  ['empty after cleaning', '\u202E\u2066%0D%0A'],
];

/** Raw C0 controls can't be written in a part header (a browser escapes CR, LF and only them): the form is refused. */
const RAW_CONTROLS: [string, string][] = [
  ['NUL', 'innocent.txt\u0000.exe'],
  ['ESC', 'bell\u0007escape\u001b[31mred.txt'],
  ['DEL', 'del\u007f.txt'],
];

describe.each(CATALOG_DATABASES)('hostile file names (catalog on %s)', (kind) => {
  const database = useCatalogDatabase(kind);
  const build = async (env: Env = {}) => buildTestApp({ ...(await database.env()), ...env });

  const upload = (filename: string) =>
    t.http().post('/v1/files').set('Content-Type', `multipart/form-data; boundary=${BOUNDARY}`).send(oneFileForm(filename, Buffer.from('payload')));

  it.each(HOSTILE)('%s: stored with a safe name and an originalName without control or bidi characters', async (_what, filename) => {
    t = await build();
    const res = await upload(filename);
    expect(res.status).toBe(201);
    const [file] = res.body.files as { id: string; name: string; originalName: string }[];
    for (const name of [file.name, file.originalName]) expect(name).not.toMatch(UNSAFE);
    expect(file.name).not.toMatch(/[/\\]/);
    expect(file.name).not.toMatch(/^\./);
    expect(file.name.length).toBeGreaterThan(0);

    // The same on the record, in the list, and in the download's headers.
    expect((await t.http().get(`/v1/files/${file.id}`)).body).toMatchObject({ name: file.name, originalName: file.originalName });
    const download = await t.http().get(`/v1/files/${file.id}/content`);
    expect(download.status).toBe(200);
    expect(download.headers['content-disposition']).toMatch(/^attachment; filename=("[^"\r\n]*"|[^\s";]+)(; filename\*=UTF-8''[^\s"]+)?$/);
    expect(download.headers['content-type']).toBe('application/octet-stream');
  });

  it.each(RAW_CONTROLS)('%s written raw in the part header: 400 malformed_multipart, nothing stored', async (_what, filename) => {
    t = await build();
    const res = await upload(filename);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('malformed_multipart');
    expect(await allRecords(t.db)).toEqual([]);
    expect(await t.storedFiles()).toEqual([]);
  });

  it('a 5,000-character name keeps its extension: name capped at 200 characters, originalName at 255', async () => {
    t = await build();
    const res = await upload(`${'é'.repeat(4995)}.xlsx`);
    expect(res.status).toBe(201);
    const [file] = res.body.files as { name: string; originalName: string }[];
    expect([...file.name]).toHaveLength(200);
    expect(file.name.endsWith('.xlsx')).toBe(true);
    expect([...file.originalName]).toHaveLength(255);
    expect(file.originalName.endsWith('.xlsx')).toBe(true);
  });

  // JSON names (direct uploads, report titles) can carry anything, NUL and lone surrogates included.
  it('names that come as JSON strings are cleaned the same way, so PostgreSQL stores them too', async () => {
    t = await build();
    const record = await t.files.expect({ owner: 'anonymous', originalName: 'a\u0000b\u202E\r\nc\ud800.txt', contentType: 'text/plain' });
    expect(record.original_name).toBe('abc\ufffd.txt');
    expect(record.name).toBe('abc\ufffd.txt');
    await t.files.discard(record);
  });
});
