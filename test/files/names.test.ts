import { newFileId, sanitizeFilename, storeKeyFor } from '../../src/files/names';

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

describe('file ids and keys', () => {
  it('are unguessable, URL-safe, and sharded into store keys', () => {
    const ids = new Set(Array.from({ length: 1000 }, newFileId));
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(storeKeyFor('abcdef0123456789abcdef0123456789')).toBe('ab/abcdef0123456789abcdef0123456789');
  });
});
