import type { Column } from '../../src/reports/spec';
import { writePdf } from '../../src/reports/pdf';
import { writeXlsx } from '../../src/reports/xlsx';
import { checkLogo } from '../../src/reports/logo';
import { MAX_HYPERLINKS } from '../../src/reports/xlsx-sheet-setup';
import fs from 'node:fs';
import path from 'node:path';
import { pngClaiming, renderedImage } from '../helpers/images';
import { makeTempDir } from '../helpers/tmp';
import { asyncRows, python, run, writeReportFile } from './helpers';

const columns: Column[] = [
  { key: 'name', header: 'Name', type: 'string' },
  { key: 'site', header: 'Site', type: 'url' },
  { key: 'amount', header: 'Amount', type: 'currency' },
  { key: 'qty', header: 'Qty', type: 'integer' },
];
const rows = [
  { name: 'Zoë', site: 'https://example.com/a?b=1&c=2', amount: -12.5, qty: -3 },
  { name: '=HYPERLINK("http://evil")', site: 'mailto:ada@example.com', amount: 7, qty: 4 },
  { name: 'Ada', site: 'javascript:alert(1)', amount: 0, qty: 0 },
  { name: 'Bob', site: '=1+2', amount: 1, qty: 1 },
];

describe('xlsx document and sheet setup', () => {
  let file: string;
  beforeAll(async () => {
    ({ file } = await writeReportFile(
      writeXlsx,
      {
        title: 'Sales & returns',
        columns,
        rows: asyncRows(rows),
        now: new Date('2026-12-31T12:00:00Z'),
        options: { author: 'Ada Lovelace', landscape: true, pageSize: 'Letter', redNegatives: true, header: '{title} & co {date}', footer: 'Page {page} of {pages}' },
      },
      'layout.xlsx',
    ));
  });

  it('is read by openpyxl with its title, author, print setup and print titles', () => {
    const got = python<Record<string, unknown>>(
      `
import json, sys, openpyxl
wb = openpyxl.load_workbook(sys.argv[1])
ws = wb.active
ps = ws.page_setup
print(json.dumps({
  "title": wb.properties.title, "creator": wb.properties.creator, "lastModifiedBy": wb.properties.lastModifiedBy,
  "orientation": ps.orientation, "paperSize": ps.paperSize, "fitToWidth": ps.fitToWidth, "fitToHeight": ps.fitToHeight,
  "fitToPage": ws.sheet_properties.pageSetUpPr.fitToPage, "printTitleRows": ws.print_title_rows,
  "header": ws.oddHeader.center.text, "footer": ws.oddFooter.center.text,
}))`,
      file,
    );
    expect(got).toEqual({
      title: 'Sales & returns',
      creator: 'Ada Lovelace',
      lastModifiedBy: 'Ada Lovelace',
      orientation: 'landscape',
      paperSize: 1,
      fitToWidth: 1,
      fitToHeight: 0,
      fitToPage: true,
      printTitleRows: '$1:$1',
      header: 'Sales && returns && co 2026-12-31',
      footer: 'Page &P of &N',
    });
  });

  it('links http, https and mailto cells; anything else, and formula-like text, stays plain text', () => {
    const got = python<unknown[]>(
      `
import json, sys, openpyxl
ws = openpyxl.load_workbook(sys.argv[1]).active
print(json.dumps([[c.value, c.data_type, c.hyperlink.target if c.hyperlink else None] for c in (ws.cell(r, 2) for r in range(2, 6))] + [[ws["A3"].value, ws["A3"].data_type]]))`,
      file,
    );
    expect(got).toEqual([
      ['https://example.com/a?b=1&c=2', 's', 'https://example.com/a?b=1&c=2'],
      ['mailto:ada@example.com', 's', 'mailto:ada@example.com'],
      ['javascript:alert(1)', 's', null],
      ['=1+2', 's', null],
      ['=HYPERLINK("http://evil")', 's'],
    ]);
    // The links live in the sheet's relationships as external targets.
    const rels = zipPart(file, 'xl/worksheets/_rels/sheet1.xml.rels');
    expect(rels.match(/TargetMode="External"/g)).toHaveLength(2);
    expect(zipPart(file, 'xl/worksheets/sheet1.xml')).toMatch(/<hyperlinks><hyperlink ref="B2" r:id="rId1"\/><hyperlink ref="B3" r:id="rId2"\/><\/hyperlinks>/);
  });

  it(`keeps a sheet's hyperlinks within Excel's ${MAX_HYPERLINKS}; the cells past them stay plain text`, async () => {
    const many = Array.from({ length: MAX_HYPERLINKS + 5 }, (_, i) => ({ site: `https://example.com/${i}` }));
    const { file: big } = await writeReportFile(writeXlsx, { title: 'Links', columns: [columns[1]], rows: asyncRows(many) }, 'links.xlsx');
    const sheet = zipPart(big, 'xl/worksheets/sheet1.xml');
    expect(sheet.match(/<hyperlink /g)).toHaveLength(MAX_HYPERLINKS);
    const last = MAX_HYPERLINKS + 6;
    expect(sheet).toContain(`<c r="A${last}" t="inlineStr"><is><t>https://example.com/${MAX_HYPERLINKS + 4}</t></is></c>`);
  });

  it('shows negative numbers in red through a second number format section', () => {
    const formats = python<string[]>(
      `
import json, sys, openpyxl
ws = openpyxl.load_workbook(sys.argv[1]).active
print(json.dumps([ws["C2"].number_format, ws["D2"].number_format]))`,
      file,
    );
    expect(formats).toEqual(['#,##0.00;[Red]-#,##0.00', '0;[Red]-0']);
  });
});

/** One part of an xlsx as text, read by Python's zipfile (an independent zip reader). */
function zipPart(file: string, part: string): string {
  return python<string>('import json, sys, zipfile; print(json.dumps(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]).decode()))', file, [part]);
}

function pageTexts(file: string): string[] {
  return run('pdftotext', ['-layout', file, '-']).split('\f').slice(0, -1);
}

describe('PDF page furniture', () => {
  const many = Array.from({ length: 150 }, (_, i) => ({ name: `Customer ${i + 1}`, site: 'https://example.com/', amount: i, qty: i }));
  // 23:30 UTC on 31 December is already 1 January in Paris.
  const now = new Date('2026-12-31T23:30:00Z');

  it('prints the header and footer with their placeholders filled on every page, and the generated-at line in the time zone', async () => {
    const logo = await renderedImage('png');
    const { file } = await writeReportFile(
      writePdf,
      {
        title: 'Customers',
        columns,
        rows: asyncRows(many),
        now,
        logo: { data: logo, ...checkLogo(logo) },
        options: { header: 'ACME Ltd. {title} {date}', footer: '{title}: page {page} of {pages}', timeZone: 'Europe/Paris', pageSize: 'Letter', landscape: true, margins: { top: 50, left: 60 } },
      },
      'furniture.pdf',
    );
    expect(run('qpdf', ['--check', file])).toContain('No syntax or stream encoding errors found');
    expect(run('pdfinfo', [file])).toMatch(/Page size:\s+792 x 612 pts \(letter\)/);
    const pages = pageTexts(file);
    expect(pages.length).toBeGreaterThan(2);
    pages.forEach((text, i) => {
      expect(text).toContain('ACME Ltd. Customers 2027-01-01');
      expect(text).toContain(`Customers: page ${i + 1} of ${pages.length}`);
    });
    expect(pages[0]).toContain('Generated 2027-01-01 00:30 (Europe/Paris)');
    // One image, embedded once and drawn on every page.
    const images = run('pdfimages', ['-list', file]).trim().split('\n').slice(2);
    expect(images).toHaveLength(pages.length);
    for (const line of images) expect(line).toMatch(/^\s*\d+\s+\d+\s+image\s+200\s+100\s+rgb/);
    expect(new Set(images.map((l) => l.trim().split(/\s+/)[10])).size).toBe(1);
  });

  it('draws a logo with an alpha channel, its mask embedded with it', async () => {
    const logo = pngClaiming(60, 30, 30, { alpha: true });
    const { file } = await writeReportFile(writePdf, { title: 'Alpha', columns, rows: asyncRows(rows), logo: { data: logo, ...checkLogo(logo) } }, 'alpha.pdf');
    expect(run('qpdf', ['--check', file])).toContain('No syntax or stream encoding errors found');
    const list = run('pdfimages', ['-list', file]);
    expect(list).toMatch(/image\s+60\s+30\s+rgb/);
    expect(list).toMatch(/smask\s+60\s+30\s+gray/);
  });

  it('says UTC and uses A4 when nothing is asked', async () => {
    const { file } = await writeReportFile(writePdf, { title: 'Plain', columns, rows: asyncRows(rows), now }, 'plain.pdf');
    const [page] = pageTexts(file);
    expect(page).toContain('Generated 2026-12-31 23:30 (UTC)');
    expect(page).toContain('Page 1 of 1');
    expect(run('pdfinfo', [file])).toMatch(/\(A4\)/);
  });
});

describe('several tables in one report', () => {
  const orders: Column[] = [
    { key: 'id', header: 'Order', type: 'integer' },
    { key: 'total', header: 'Total', type: 'currency' },
  ];
  const people: Column[] = [
    { key: 'who', header: 'Who', type: 'string' },
    { key: 'web', header: 'Web', type: 'url' },
  ];
  const orderRows = Array.from({ length: 130 }, (_, i) => ({ id: i + 1, total: i * 2.5 }));
  const peopleRows = [{ who: 'Zoë', web: 'https://zoe.example/' }, { who: 'Ada', web: 'mailto:ada@example.com' }];
  const sheets = () => [
    { name: 'Orders', columns: orders, rows: asyncRows(orderRows) },
    { name: "People's links", columns: people, rows: asyncRows(peopleRows) },
  ];

  it('makes one xlsx sheet per table, each with its own filter, print titles and links', async () => {
    const progress: number[] = [];
    const { file, result } = await writeReportFile(
      writeXlsx,
      { title: 'Q1', columns: orders, rows: [], sheets: sheets(), options: { totalsRow: true }, onProgress: (n) => progress.push(n) },
      'tables.xlsx',
    );
    expect(result).toEqual({ rows: 132 });
    expect(progress.at(-1)).toBe(132);
    const got = python<Record<string, unknown>>(
      `
import json, sys, openpyxl
wb = openpyxl.load_workbook(sys.argv[1])
a, b = wb.worksheets
print(json.dumps({
  "names": wb.sheetnames,
  "a": [a["A1"].value, a["B1"].value, a["A131"].value, a["B132"].value, a.auto_filter.ref, a.print_title_rows],
  "b": [b["A1"].value, b["B2"].value, b["B2"].hyperlink.target, b["B3"].hyperlink.target, b.auto_filter.ref, b.print_title_rows],
  "selected": [a.sheet_view.tabSelected, b.sheet_view.tabSelected],
}))`,
      file,
    );
    expect(got).toEqual({
      names: ['Orders', "People's links"],
      a: ['Order', 'Total', 130, '=SUBTOTAL(9,B2:B131)', 'A1:B131', '$1:$1'],
      b: ['Who', 'https://zoe.example/', 'https://zoe.example/', 'mailto:ada@example.com', 'A1:B3', '$1:$1'],
      selected: [true, null],
    });
    expect(zipPart(file, 'xl/workbook.xml')).toContain(`<definedName name="_xlnm.Print_Titles" localSheetId="1">'People''s links'!$1:$1</definedName>`);

    // LibreOffice opens it headless and writes every sheet as shown (the last filter token: all sheets).
    const out = await makeTempDir('stowage-soffice-');
    try {
      run('soffice', ['--headless', '--convert-to', 'csv:Text - txt - csv (StarCalc):44,34,UTF8,1,,0,false,true,true,false,false,-1', '--outdir', out, file]);
      const orders = fs.readFileSync(path.join(out, 'tables-Orders.csv'), 'utf8').trim().split('\n');
      expect(orders[0]).toBe('Order,Total');
      // totalsRow applies to each sheet.
      expect(orders.slice(130)).toEqual(['130,322.50', 'Total,"20,962.50"']);
      expect(fs.readFileSync(path.join(out, "tables-People's links.csv"), 'utf8').trim().split('\n')).toEqual(['Who,Web', 'Zoë,https://zoe.example/', 'Ada,mailto:ada@example.com', 'Total,']);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });

  it('makes one PDF section per table, each from a new page under its name, numbered across all pages', async () => {
    const { file, result } = await writeReportFile(writePdf, { title: 'Q1 report', columns: orders, rows: [], sheets: sheets(), options: { footer: '{page}/{pages}' } }, 'tables.pdf');
    expect(result).toEqual({ rows: 132 });
    expect(run('qpdf', ['--check', file])).toContain('No syntax or stream encoding errors found');
    const pages = pageTexts(file);
    expect(pages.length).toBeGreaterThan(2);
    pages.forEach((text, i) => expect(text).toContain(`${i + 1}/${pages.length}`));
    expect(pages[0]).toMatch(/Q1 report\s+Orders\s+Generated/);
    const last = pages[pages.length - 1];
    expect(last).toContain("People's links");
    expect(last).toMatch(/Who\s+Web/);
    expect(last).toContain('mailto:ada@example.com');
    // Their cells are links a reader can follow.
    const uris = run('qpdf', ['--qdf', '--object-streams=disable', file, '-']).match(/\/URI \((.*?)\)/g);
    expect(uris).toEqual(['/URI (https://zoe.example/)', '/URI (mailto:ada@example.com)']);
    expect(last).not.toContain('Order ');
    // The orders end on the page before the people's section starts.
    expect(pages[pages.length - 2]).toMatch(/\b130\b/);
  });
});
