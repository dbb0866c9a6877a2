import fs from 'node:fs';
import * as XLSX from 'xlsx';
import { Writable } from 'node:stream';
import type { Column } from '../../src/reports/spec';
import { columnLetter, sheetNameFrom, writeXlsx } from '../../src/reports/xlsx';
import { asyncRows, python, run, writeReportFile } from './helpers';

const columns: Column[] = [
  { key: 'name', header: 'Name', type: 'string', width: 30 },
  { key: 'qty', header: 'Quantity', type: 'integer' },
  { key: 'price', header: 'Price', type: 'currency' },
  { key: 'ratio', header: 'Ratio', type: 'number', numberFormat: '0.000%' },
  { key: 'when', header: 'When', type: 'date' },
  { key: 'ok', header: 'OK?', type: 'boolean' },
];

const rows = [
  { name: 'Zoë Ødegård', qty: 3, price: 19.99, ratio: 0.125, when: '2024-01-31', ok: true },
  { name: 'Łukasz <&> "quoted"', qty: -7, price: 0, ratio: -1.5e-7, when: '2024-02-29T13:45:30Z', ok: false },
  { name: '  Ελένη  ', qty: 9007199254740991, price: 1234567.891, ratio: 1e21, when: new Date(Date.UTC(2000, 0, 1)), ok: 'true' },
  { name: 'Дмитрий\x07bell', qty: null, price: undefined, ratio: '', when: null },
  { name: '=1+2', qty: 'n/a', price: '12.5', ratio: 2, when: 'not a date', ok: 'maybe' },
];

const EPOCH = Date.UTC(1899, 11, 30);
const serial = (iso: string) => (Date.parse(iso) - EPOCH) / 86_400_000;

describe('writeXlsx', () => {
  let file: string;
  beforeAll(async () => {
    const progress: number[] = [];
    const written = await writeReportFile(
      writeXlsx,
      { title: 'Sales: Q1 [draft]', columns, rows: asyncRows(rows), options: { totalsRow: true }, onProgress: (n) => progress.push(n) },
      'report.xlsx',
    );
    file = written.file;
    expect(written.result).toEqual({ rows: 5 });
    expect(progress).toEqual([5]);
  });

  it('is read back cell by cell by SheetJS with the right types and values', () => {
    const wb = XLSX.read(fs.readFileSync(file), { cellNF: true });
    expect(wb.SheetNames).toEqual(['Sales  Q1  draft']);
    expect(wb.Props?.Title).toBe('Sales: Q1 [draft]');
    const ws = wb.Sheets[wb.SheetNames[0]];
    const cell = (ref: string) => ws[ref] as XLSX.CellObject | undefined;
    expect(['A1', 'B1', 'C1', 'D1', 'E1', 'F1'].map((r) => cell(r)?.v)).toEqual(['Name', 'Quantity', 'Price', 'Ratio', 'When', 'OK?']);

    expect(cell('A2')).toMatchObject({ t: 's', v: 'Zoë Ødegård' });
    expect(cell('B2')).toMatchObject({ t: 'n', v: 3 });
    expect(cell('C2')).toMatchObject({ t: 'n', v: 19.99, z: '#,##0.00' });
    expect(cell('D2')).toMatchObject({ t: 'n', v: 0.125, z: '0.000%' });
    expect(cell('E2')).toMatchObject({ t: 'n', v: serial('2024-01-31'), z: 'yyyy-mm-dd' });
    expect(cell('F2')).toMatchObject({ t: 'b', v: true });

    expect(cell('A3')).toMatchObject({ t: 's', v: 'Łukasz <&> "quoted"' });
    expect(cell('B3')).toMatchObject({ t: 'n', v: -7 });
    expect(cell('C3')).toMatchObject({ t: 'n', v: 0 });
    expect(cell('D3')).toMatchObject({ t: 'n', v: -1.5e-7 });
    expect(cell('E3')).toMatchObject({ t: 'n', v: serial('2024-02-29T13:45:30Z'), z: 'yyyy-mm-dd hh:mm:ss' });
    expect(cell('F3')).toMatchObject({ t: 'b', v: false });

    expect(cell('A4')).toMatchObject({ t: 's', v: '  Ελένη  ' });
    expect(cell('B4')).toMatchObject({ t: 'n', v: 9007199254740991 });
    expect(cell('C4')).toMatchObject({ t: 'n', v: 1234567.891 });
    expect(cell('D4')).toMatchObject({ t: 'n', v: 1e21 });
    expect(cell('E4')).toMatchObject({ t: 'n', v: serial('2000-01-01') });
    expect(cell('F4')).toMatchObject({ t: 'b', v: true });

    // Control characters XML cannot carry are dropped; blanks leave no cell at all.
    expect(cell('A5')).toMatchObject({ t: 's', v: 'Дмитрийbell' });
    for (const ref of ['B5', 'C5', 'D5', 'E5', 'F5']) expect(cell(ref)).toBeUndefined();

    // Values that do not fit their column are kept, as text.
    expect(cell('A6')).toMatchObject({ t: 's', v: '=1+2' });
    expect(cell('A6')?.f).toBeUndefined();
    expect(cell('B6')).toMatchObject({ t: 's', v: 'n/a' });
    expect(cell('C6')).toMatchObject({ t: 'n', v: 12.5 });
    expect(cell('E6')).toMatchObject({ t: 's', v: 'not a date' });
    expect(cell('F6')).toMatchObject({ t: 's', v: 'maybe' });

    // Totals: SUBTOTAL(9) over the data rows with the total cached for readers that do not calculate.
    expect(cell('A7')).toMatchObject({ t: 's', v: 'Total' });
    expect(cell('B7')).toMatchObject({ t: 'n', f: 'SUBTOTAL(9,B2:B6)', v: 3 - 7 + 9007199254740991 });
    expect(cell('C7')).toMatchObject({ f: 'SUBTOTAL(9,C2:C6)', v: 19.99 + 0 + 1234567.891 + 12.5 });
    expect(cell('D7')).toMatchObject({ f: 'SUBTOTAL(9,D2:D6)' });
    expect(cell('E7')).toBeUndefined();
    expect(ws['!ref']).toBe('A1:F7');
    expect(ws['!autofilter']).toEqual({ ref: 'A1:F6' });
    expect(wb.Workbook?.Names).toEqual([
      { Name: '_xlnm._FilterDatabase', Sheet: 0, Hidden: true, Ref: "'Sales  Q1  draft'!$A$1:$F$6" },
      // The header row is printed at the top of every page.
      { Name: '_xlnm.Print_Titles', Sheet: 0, Ref: "'Sales  Q1  draft'!$1:$1" },
    ]);
  });

  it('is read by openpyxl with real dates, booleans, styles, widths, a frozen header and a filter', () => {
    const script = `
import json, sys, datetime, openpyxl
wb = openpyxl.load_workbook(sys.argv[1])
ws = wb.active
def enc(v):
    if isinstance(v, datetime.datetime): return {'datetime': v.isoformat()}
    return v
print(json.dumps({
  'title': wb.properties.title,
  'sheet': ws.title,
  'freeze': ws.freeze_panes,
  'filter': ws.auto_filter.ref,
  'widths': {k: ws.column_dimensions[k].width for k in 'ABCDEF'},
  'headerBold': [ws.cell(1, c).font.b for c in range(1, 7)],
  'headerFill': ws['A1'].fill.fgColor.rgb,
  'formats': [ws.cell(2, c).number_format for c in range(1, 7)],
  'totalBold': ws['B7'].font.b,
  'cells': [[[type(c.value).__name__, enc(c.value)] for c in row] for row in ws.iter_rows(min_row=2, max_row=4)],
}))
`;
    const got = python<Record<string, unknown>>(script, file);
    expect(got).toMatchObject({
      title: 'Sales: Q1 [draft]',
      sheet: 'Sales  Q1  draft',
      freeze: 'A2',
      filter: 'A1:F6',
      widths: { A: 30, B: 18, C: 14, D: 31, E: 21, F: 8 },
      headerBold: [true, true, true, true, true, true],
      headerFill: 'FFD9E1F2',
      formats: ['General', '0', '#,##0.00', '0.000%', 'yyyy-mm-dd', 'General'],
      totalBold: true,
    });
    expect(got.cells).toEqual([
      [['str', 'Zoë Ødegård'], ['int', 3], ['float', 19.99], ['float', 0.125], ['datetime', { datetime: '2024-01-31T00:00:00' }], ['bool', true]],
      [['str', 'Łukasz <&> "quoted"'], ['int', -7], ['int', 0], ['float', -1.5e-7], ['datetime', { datetime: '2024-02-29T13:45:30' }], ['bool', false]],
      [['str', '  Ελένη  '], ['int', 9007199254740991], ['float', 1234567.891], ['float', 1e21], ['datetime', { datetime: '2000-01-01T00:00:00' }], ['bool', true]],
    ]);
  });

  it("is a zip whose every CRC checks out in Python's zipfile", () => {
    expect(run('/usr/bin/python3', ['-c', 'import sys, zipfile; print(zipfile.ZipFile(sys.argv[1]).testzip())', file]).trim()).toBe('None');
  });

  it('writes just the header for no rows, with no totals row', async () => {
    const { file: empty, result } = await writeReportFile(writeXlsx, { title: 'Empty', columns, rows: [], options: { totalsRow: true, sheetName: 'Data' } }, 'e.xlsx');
    expect(result.rows).toBe(0);
    const wb = XLSX.read(fs.readFileSync(empty));
    expect(wb.SheetNames).toEqual(['Data']);
    expect(XLSX.utils.sheet_to_json(wb.Sheets.Data, { header: 1 })).toEqual([['Name', 'Quantity', 'Price', 'Ratio', 'When', 'OK?']]);
  });

  it('streams many rows with progress reports and reads them all back', async () => {
    const n = 5000;
    function* many() {
      for (let i = 0; i < n; i++) yield { name: `row ${i}`, qty: i, price: i / 4, ratio: i, when: new Date(Date.UTC(2020, 0, 1) + i * 3_600_000), ok: i % 2 === 0 };
    }
    const progress: number[] = [];
    const { file: big } = await writeReportFile(writeXlsx, { title: 'Big', columns, rows: many(), onProgress: (d) => progress.push(d) }, 'big.xlsx');
    expect(progress).toEqual([1000, 2000, 3000, 4000, 5000, 5000]);
    const data = XLSX.utils.sheet_to_json<unknown[]>(XLSX.read(fs.readFileSync(big)).Sheets.Big, { header: 1 });
    expect(data).toHaveLength(n + 1);
    expect(data[n]).toEqual([`row ${n - 1}`, n - 1, (n - 1) / 4, n - 1, (Date.UTC(2020, 0, 1) + (n - 1) * 3_600_000 - EPOCH) / 86_400_000, false]);
  });

  it('destroys the output with the error when the rows fail midway', async () => {
    async function* failing() {
      yield rows[0];
      throw new Error('source went away');
    }
    const out = new Writable({ write: (_c, _e, cb) => cb() });
    await expect(writeXlsx({ title: 'x', columns, rows: failing() }, out)).rejects.toThrow('source went away');
    expect(out.destroyed).toBe(true);
  });

  it('places cells after a blank correctly for both readers (cell references written only after gaps)', async () => {
    const gappy = [{ name: 'a', qty: null, price: 5, ratio: undefined, when: null, ok: true }, { qty: 7 }];
    const { file: gap } = await writeReportFile(writeXlsx, { title: 'Gaps', columns, rows: gappy }, 'g.xlsx');
    const ws = XLSX.read(fs.readFileSync(gap)).Sheets.Gaps;
    expect(XLSX.utils.sheet_to_json(ws, { header: 1, defval: null })).toEqual([
      ['Name', 'Quantity', 'Price', 'Ratio', 'When', 'OK?'],
      ['a', null, 5, null, null, true],
      [null, 7, null, null, null, null],
    ]);
    const script = `
import json, sys, openpyxl
ws = openpyxl.load_workbook(sys.argv[1]).active
print(json.dumps([[c.value for c in row] for row in ws.iter_rows(min_row=2, max_row=3)]))
`;
    expect(python(script, gap)).toEqual([
      ['a', null, 5, null, null, true],
      [null, 7, null, null, null, null],
    ]);
  });

  it('names columns and sheets as Excel does', () => {
    expect([0, 25, 26, 51, 52, 701, 702, 16383].map(columnLetter)).toEqual(['A', 'Z', 'AA', 'AZ', 'BA', 'ZZ', 'AAA', 'XFD']);
    expect(sheetNameFrom("'quarterly: report/2024 with a very long name'")).toBe('quarterly  report 2024 with a v');
    expect(sheetNameFrom('???')).toBe('Report');
  });
});
