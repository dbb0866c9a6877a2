import fs from 'node:fs';
import path from 'node:path';
import { cellText } from '../../src/reports/format';
import { writePdf } from '../../src/reports/pdf';
import type { Column } from '../../src/reports/spec';
import { writeXlsx } from '../../src/reports/xlsx';
import { makeTempDir } from '../helpers/tmp';
import { Readable } from 'node:stream';
import { python, readSource, run, writeReportFile } from './helpers';

// One set of columns with codes of every kind, read back by independent programs: LibreOffice
// shows the xlsx's values through their codes, and the pdf must print the same texts.
const columns: Column[] = [
  { key: 'region', header: 'Region', type: 'string' },
  { key: 'city', header: 'City', type: 'string' },
  { key: 'id', header: 'Order id', type: 'integer' },
  { key: 'price', header: 'Price', type: 'currency', numberFormat: '€#,##0.00' },
  { key: 'net', header: 'Net', type: 'currency', numberFormat: '[$€-407] #,##0.00' },
  { key: 'share', header: 'Share', type: 'number', numberFormat: '0.0%' },
  { key: 'qty', header: 'Qty', type: 'integer', numberFormat: '#,##0;[Red]-#,##0' },
  { key: 'day', header: 'Day', type: 'date', numberFormat: 'd mmm yyyy' },
];
const rows = [
  { region: 'North', city: 'Oslo', id: 1000, price: 1138.84, net: 950.5, share: 0.125, qty: 1200, day: '2024-02-03' },
  { region: 'North', city: 'Oslo', id: 1001, price: 20, net: 16.75, share: 0.07, qty: -3, day: '2024-02-04' },
  { region: 'North', city: 'Bergen', id: 1002, price: 5.5, net: 4.6, share: 0.5, qty: 10, day: '2024-12-31' },
  { region: 'South', city: 'Rome', id: 2000, price: 1e6, net: 800000, share: 1, qty: 2500, day: '2025-01-01' },
];

/** Each file converted to CSV by LibreOffice headless, in one run with a profile of its own. */
function libreOfficeCsv(files: string[], dir: string): string[][][] {
  const out = path.join(dir, 'lo');
  // Filter options: comma, double quote, UTF-8, from line 1, ..., the 9th: cells as shown.
  const filter = 'csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,true';
  run('soffice', [`-env:UserInstallation=file://${path.join(dir, 'profile')}`, '--headless', '--convert-to', filter, '--outdir', out, ...files]);
  return files.map((file) => {
    // A workbook LibreOffice could not open (or would repair) leaves no CSV behind.
    const csv = fs.readFileSync(path.join(out, `${path.basename(file, '.xlsx')}.csv`), 'utf8');
    return csv.trimEnd().split('\n').map((line) => line.match(/("([^"]|"")*"|[^,]*)(,|$)/g)!.slice(0, columns.length).map((f) => f.replace(/,$/, '').replace(/^"|"$/g, '').replace(/""/g, '"')));
  });
}

const READ_BACK = `
import json, sys, openpyxl
f = openpyxl.load_workbook(sys.argv[1])
v = openpyxl.load_workbook(sys.argv[1], data_only=True)
ws, wv = f.active, v.active
print(json.dumps({
  'formulas': [[c.value if isinstance(c.value, str) and c.value.startswith('=') else None for c in row] for row in ws.iter_rows()],
  'values': [[c.value if not hasattr(c.value, 'isoformat') else c.value.isoformat() for c in row] for row in wv.iter_rows()],
  'levels': [ws.row_dimensions[r].outlineLevel for r in range(1, ws.max_row + 1)],
  'summaryBelow': ws.sheet_properties.outlinePr.summaryBelow if ws.sheet_properties.outlinePr else None,
  'widths': {k: ws.column_dimensions[k].width for k in 'ABCDEFGH'},
}))
`;
interface ReadBack {
  formulas: (string | null)[][];
  values: unknown[][];
  levels: number[];
  summaryBelow: boolean | null;
  widths: Record<string, number>;
}

describe('formats, totals and groups, read by LibreOffice, openpyxl and pdftotext', () => {
  let dir: string;
  const xlsx: Record<'plain' | 'totals' | 'groups', string> = { plain: '', totals: '', groups: '' };
  let lo: Record<keyof typeof xlsx, string[][]>;
  beforeAll(async () => {
    dir = await makeTempDir('stowage-format-');
    xlsx.plain = (await writeReportFile(writeXlsx, { title: 'Plain', columns, rows }, 'plain.xlsx')).file;
    xlsx.totals = (await writeReportFile(writeXlsx, { title: 'Totals', columns, rows, options: { totalsRow: true } }, 'totals.xlsx')).file;
    xlsx.groups = (await writeReportFile(writeXlsx, { title: 'Groups', columns, rows, options: { groupBy: ['region', 'city'] } }, 'groups.xlsx')).file;
    const [plain, totals, groups] = libreOfficeCsv([xlsx.plain, xlsx.totals, xlsx.groups], dir);
    lo = { plain, totals, groups };
  }, 120_000);

  it('LibreOffice opens every workbook and shows each value as the shared formatter does', () => {
    expect(lo.plain[0]).toEqual(columns.map((c) => c.header));
    rows.forEach((row, r) => {
      expect(lo.plain[r + 1]).toEqual(columns.map((c) => cellText(c)(row[c.key as keyof typeof row]).text));
    });
    // The texts themselves, so a formatter bug that LibreOffice shared would still show.
    expect(lo.plain[1]).toEqual(['North', 'Oslo', '1000', '€1,138.84', '€ 950.50', '12.5%', '1,200', '3 Feb 2024']);
    expect(lo.plain[2].slice(6)).toEqual(['-3', '4 Feb 2024']);
    expect(lo.plain[4].slice(2, 6)).toEqual(['2000', '€1,000,000.00', '€ 800,000.00', '100.0%']);
  });

  it('writes a totals row of SUBTOTAL formulas with cached values', () => {
    expect(lo.totals).toHaveLength(6);
    expect(lo.totals[5]).toEqual(['Total', '', '', '€1,001,164.34', '€ 800,971.85', '169.5%', '3,707', '']);
    const book = python<ReadBack>(READ_BACK, xlsx.totals);
    expect(book.formulas[5]).toEqual([null, null, null, '=SUBTOTAL(9,D2:D5)', '=SUBTOTAL(9,E2:E5)', '=SUBTOTAL(9,F2:F5)', '=SUBTOTAL(9,G2:G5)', null]);
    // "Order id" is an integer column named as an identifier: not summed.
    expect(book.formulas[5][2]).toBeNull();
  });

  it('groups consecutive runs: subtotal rows as formulas, cached values, outline levels, a grand total', () => {
    const book = python<ReadBack>(READ_BACK, xlsx.groups);
    const labels = book.values.map((r) => `${r[0] ?? ''}|${r[1] ?? ''}`);
    expect(labels).toEqual(['Region|City', 'North|Oslo', 'North|Oslo', '|Oslo total', 'North|Bergen', '|Bergen total', 'North total|', 'South|Rome', '|Rome total', 'South total|', 'Total|']);
    expect(book.formulas[3]?.[3]).toBe('=SUBTOTAL(9,D2:D3)');
    expect(book.formulas[6]?.[3]).toBe('=SUBTOTAL(9,D2:D6)');
    expect(book.formulas[10]?.[3]).toBe('=SUBTOTAL(9,D2:D10)');
    expect(book.values[3][3]).toBeCloseTo(1158.84, 6);
    expect(book.values[6][3]).toBeCloseTo(1164.34, 6);
    expect(book.values[10][3]).toBeCloseTo(1001164.34, 6);
    expect(book.levels).toEqual([0, 2, 2, 1, 2, 1, 0, 2, 1, 0, 0]);
    expect(book.summaryBelow).toBe(true);
    // LibreOffice computes the same sums (SUBTOTAL skips the subtotals inside its range).
    expect(lo.groups.map((r) => r[3])).toEqual(['Price', '€1,138.84', '€20.00', '€1,158.84', '€5.50', '€5.50', '€1,164.34', '€1,000,000.00', '€1,000,000.00', '€1,000,000.00', '€1,001,164.34']);
    expect(lo.groups[10][6]).toBe('3,707');
  });

  it('sizes xlsx columns from their content', () => {
    const { widths } = python<ReadBack>(READ_BACK, xlsx.plain);
    // "€1,000,000.00" is 13 characters; "Order id" needs its header and filter button.
    expect(widths.D).toBe(15);
    expect(widths.C).toBe(12);
    expect(widths.A).toBe(10);
  });

  it('prints the same texts, totals and groups in the pdf', async () => {
    const { file } = await writeReportFile(writePdf, { title: 'Orders', columns, rows, options: { groupBy: ['region'] } }, 'groups.pdf');
    expect(run('qpdf', ['--check', file])).toContain('No syntax or stream encoding errors found');
    const text = run('pdftotext', ['-layout', file, '-']);
    const lines = text.split('\n').map((l) => l.trim().replace(/\s+/g, ' ')).filter(Boolean);
    const at = (start: string) => lines.find((l) => l.startsWith(start));
    expect(at('Region: North')).toBe('Region: North');
    expect(at('North Oslo')).toBe('North Oslo 1000 €1,138.84 € 950.50 12.5% 1,200 3 Feb 2024');
    expect(at('North total')).toBe('North total €1,164.34 € 971.85 69.5% 1,207');
    expect(at('Region: South')).toBe('Region: South');
    expect(at('South total')).toBe('South total €1,000,000.00 € 800,000.00 100.0% 2,500');
    expect(at('Total')).toBe('Total €1,001,164.34 € 800,971.85 169.5% 3,707');
    expect(lines.indexOf(at('Region: South')!)).toBeGreaterThan(lines.indexOf(at('North total')!));
    // Columns measured from their content keep apart: a right-aligned number and the date after it.
    const words = [...run('pdftotext', ['-bbox', file, '-']).matchAll(/xMin="([\d.]+)"[^>]*xMax="([\d.]+)"[^>]*>([^<]*)</g)];
    const qty = words.findIndex((w) => w[3] === '1,200');
    expect(words[qty + 1][3]).toBe('3');
    expect(Number(words[qty + 1][1]) - Number(words[qty][2])).toBeGreaterThanOrEqual(9);
  });

  it('prints a totals row in the pdf when asked, and none otherwise', async () => {
    const { file } = await writeReportFile(writePdf, { title: 'Orders', columns, rows, options: { totalsRow: true } }, 'totals.pdf');
    expect(run('pdftotext', ['-layout', file, '-'])).toMatch(/Total\s+€1,001,164\.34\s+€ 800,971\.85\s+169\.5%\s+3,707/);
    const { file: plain } = await writeReportFile(writePdf, { title: 'Orders', columns, rows }, 'plain.pdf');
    expect(run('pdftotext', ['-layout', plain, '-'])).not.toContain('Total');
  });

  it('prints ids read from a CSV without grouping, groups a source by header, and names an unknown group column', async () => {
    const csv = 'id,Region,Amount\n1000,North,1200.5\n1001,North,3\n2000,South,7\n';
    const source = await readSource(Readable.from([csv]));
    expect(source.columns.map((c) => c.type)).toEqual(['integer', 'string', 'number']);
    const { file } = await writeReportFile(writePdf, { title: 'From CSV', ...source, options: { groupBy: ['Region'] } }, 'csv.pdf');
    const text = run('pdftotext', ['-layout', file, '-']).replace(/[ \t]+/g, ' ');
    expect(text).toContain('1000 North 1200.5');
    expect(text).not.toContain('1,000');
    expect(text).toContain('North total 1203.5');
    // On a line of its own; pdftotext may indent it a column (the generated-at line sets a finer grid).
    expect(text).toMatch(/\n ?Total 1210\.5\n/);
    await expect(writeReportFile(writeXlsx, { title: 'x', ...source, options: { groupBy: ['Nope'] } }, 'x.xlsx')).rejects.toThrow(
      `options.groupBy: "Nope" is not one of the columns' keys or headers.`,
    );
  });

  it('keeps a group heading with its first row across pages, and prints [Red] negatives in red', async () => {
    const many = Array.from({ length: 400 }, (_, i) => ({ region: `R${Math.floor(i / 7)}`, city: 'x', id: i, price: 1, net: 1, share: 0, qty: i % 5 === 0 ? -i : i, day: '2024-01-01' }));
    const { file } = await writeReportFile(writePdf, { title: 'Many', columns, rows: many, options: { groupBy: ['region'] } }, 'many.pdf');
    const pages = run('pdftotext', ['-layout', file, '-']).split('\f').slice(0, -1);
    expect(pages.length).toBeGreaterThan(3);
    pages.forEach((page, i) => {
      const lines = page.split('\n').map((l) => l.trim()).filter(Boolean);
      expect(lines[lines.length - 1]).toBe(`Page ${i + 1} of ${pages.length}`);
      // The line above the footer is a row or a subtotal, never a heading left alone.
      expect(lines[lines.length - 2]).not.toMatch(/^Region: /);
    });
    const all = pages.join('\n').replace(/[ \t]+/g, ' ');
    for (let g = 0; g < 58; g++) expect(all).toContain(`Region: R${g}\n`);
    expect(all).toContain('R57 total');
    // The content streams, uncompressed: red (1 0 0 scn) is set for the negative quantities only.
    const qdf = path.join(dir, 'many-qdf.pdf');
    run('qpdf', ['--qdf', '--object-streams=disable', file, qdf]);
    const content = fs.readFileSync(qdf, 'latin1');
    expect(content.match(/^1 0 0 scn$/gm)?.length).toBe(many.filter((r) => r.qty < 0).length);
  });
});
