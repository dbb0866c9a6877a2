import { parse } from 'content-disposition';
import { asciiFilename, contentDisposition, newFileId, sanitizeFilename, storeKeyFor } from '../../src/files/names';

describe('sanitizeFilename', () => {
  it.each([
    ['report.pdf', 'report.pdf'],
    ['../../etc/passwd', 'passwd'],
    ['C:\\Users\\me\\evil.exe', 'evil.exe'],
    ['..', 'file'],
    ['.env', 'env'],
    ['a\u0000b\u0007c\u001f.txt', 'abc.txt'],
    ['\u202etxt.exe', 'txt.exe'],
    ['what?<>:"|*.txt', 'what_______.txt'],
    ['  spaced   out  .txt  ', 'spaced out .txt'],
    ['trailing dots...', 'trailing dots'],
    ['', 'file'],
    ['Zoë Ødegård – 東京.xlsx', 'Zoë Ødegård – 東京.xlsx'],
  ])('%j becomes %j', (input, expected) => {
    expect(sanitizeFilename(input)).toBe(expected);
  });

  it('cuts over-long names to 200 characters, keeping the extension', () => {
    const name = sanitizeFilename(`${'é'.repeat(500)}.xlsx`);
    expect([...name]).toHaveLength(200);
    expect(name.endsWith('.xlsx')).toBe(true);
  });
});

describe('asciiFilename (the plain filename= that curl -OJ and other clients save under)', () => {
  it.each([
    ['Ünïcödé report (final).txt', 'Unicode report (final).txt'],
    ['résumé 2026 €.pdf', 'resume 2026 EUR.pdf'],
    ['Straße Ærø Łódź Œuvre.csv', 'Strasse AEro Lodz OEuvre.csv'],
    ['Zoë Ødegård – 東京.xlsx', 'Zoe Odegard - _.xlsx'],
    ['“quoted” ‘name’ — ok.txt', "'quoted' 'name' - ok.txt"],
    ['ﬁnance ＱＴＲ½…', 'finance QTR1_2...'],
    ['東京.xlsx', 'file.xlsx'],
    ['東京', 'file'],
    ['report.資料', 'report._'],
    ['a"b\\c.txt', 'a_b_c.txt'],
    ['tab\there\u0000.txt', 'tabhere.txt'],
    ['plain-ascii_name (1).tar.gz', 'plain-ascii_name (1).tar.gz'],
  ])('%j -> %j', (name, expected) => {
    expect(asciiFilename(name)).toBe(expected);
  });

  it('is always printable US-ASCII with no quote or backslash, whatever the name', () => {
    const samples = ['\ud800lone', '🙂🙂.png', 'Ελληνικά.doc', 'Русский отчёт.pdf', 'עברית.txt', '\u202eexe.txt', 'x'.repeat(300)];
    for (const name of samples) expect(asciiFilename(name)).toMatch(/^[\x20-\x21\x23-\x5b\x5d-\x7e]+$/);
  });
});

describe('contentDisposition', () => {
  it('sends the ASCII spelling as filename and the name itself as filename*', () => {
    const header = contentDisposition('Ünïcödé report (final).txt', 'attachment');
    expect(header).toBe(`attachment; filename="Unicode report (final).txt"; filename*=UTF-8''%C3%9Cn%C3%AFc%C3%B6d%C3%A9%20report%20%28final%29.txt`);
    // A reader that knows filename* gets the real name back.
    expect(parse(header).parameters.filename).toBe('Ünïcödé report (final).txt');
  });

  it('sends an ASCII name as it is, and filename* only where filename cannot carry it', () => {
    expect(contentDisposition('report.pdf', 'inline')).toBe('inline; filename=report.pdf');
    expect(contentDisposition('100%41.txt', 'attachment')).toBe(`attachment; filename=100%41.txt; filename*=UTF-8''100%2541.txt`);
  });
});

describe('file ids and keys', () => {
  it('are unguessable, URL-safe, and sharded into store keys', () => {
    const ids = new Set(Array.from({ length: 1000 }, newFileId));
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(storeKeyFor('abcdef0123456789abcdef0123456789')).toBe('ab/abcdef0123456789abcdef0123456789');
  });
});
