import fs from 'node:fs';
import * as XLSX from 'xlsx';
import type { Column } from '../../src/reports/spec';
import { csvField, writeCsv } from '../../src/reports/csv';
import { asyncRows, writeReportFile } from './helpers';

const columns: Column[] = [
  { key: 'name', header: 'Name, full', type: 'string' },
  { key: 'n', header: 'N', type: 'number' },
  { key: 'when', header: 'When', type: 'date' },
  { key: 'ok', header: 'OK', type: 'boolean' },
];

describe('writeCsv', () => {
  it('writes RFC 4180: CRLF, quoting, ISO dates, and a BOM when asked', async () => {
    const rows = [
      { name: 'Zoë "Z" Ødegård', n: -1.5, when: '2024-01-31', ok: true },
      { name: 'two\nlines', n: 0, when: new Date('2024-02-29T13:45:30.250Z'), ok: false },
      { name: null, n: undefined, when: '', ok: null },
    ];
    const { file, result } = await writeReportFile(writeCsv, { title: 't', columns, rows: asyncRows(rows), options: { bom: true } }, 'r.csv');
    expect(result.rows).toBe(3);
    const bytes = fs.readFileSync(file);
    expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    expect(bytes.subarray(3).toString('utf8')).toBe(
      '"Name, full",N,When,OK\r\n' +
        '"Zoë ""Z"" Ødegård",-1.5,2024-01-31,true\r\n' +
        '"two\nlines",0,2024-02-29T13:45:30.250Z,false\r\n' +
        ',,,\r\n',
    );
  });

  it('writes no BOM by default', async () => {
    const { file } = await writeReportFile(writeCsv, { title: 't', columns, rows: [] }, 'r.csv');
    expect(fs.readFileSync(file, 'utf8')).toBe('"Name, full",N,When,OK\r\n');
  });

  it('neutralises text that a spreadsheet would run as a formula, and leaves numbers alone', async () => {
    const hostile = ['=HYPERLINK("http://x","y")', '+1+1', '-2+3', '@SUM(A1)', '\tTAB', '\rCR', 'plain'];
    const rows = hostile.map((name) => ({ name, n: -42 }));
    const { file } = await writeReportFile(writeCsv, { title: 't', columns: columns.slice(0, 2), rows }, 'r.csv');
    const lines = fs.readFileSync(file, 'utf8').split('\r\n');
    expect(lines.slice(1, -1)).toEqual([
      `"'=HYPERLINK(""http://x"",""y"")",-42`,
      "'+1+1,-42",
      "'-2+3,-42",
      "'@SUM(A1),-42",
      "'\tTAB,-42",
      `"'\rCR",-42`,
      'plain,-42',
    ]);
    // An independent spreadsheet reader sees text, not formulas.
    const ws = XLSX.read(fs.readFileSync(file, 'utf8'), { type: 'string' }).Sheets.Sheet1;
    expect(ws.A2).toMatchObject({ t: 's', v: `'=HYPERLINK("http://x","y")` });
    expect(ws.A2.f).toBeUndefined();
    expect(ws.B2).toMatchObject({ t: 'n', v: -42 });
  });

  it('quotes headers too and reports progress', async () => {
    expect(csvField('=cmd')).toBe("'=cmd");
    expect(csvField('a"b')).toBe('"a""b"');
    const progress: number[] = [];
    const rows = Array.from({ length: 2500 }, (_, i) => ({ name: `r${i}`, n: i }));
    await writeReportFile(writeCsv, { title: 't', columns, rows, onProgress: (n) => progress.push(n) }, 'r.csv');
    expect(progress).toEqual([1000, 2000, 2500]);
  });
});
