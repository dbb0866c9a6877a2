import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Column } from '../../src/reports/spec';
import { cellText } from '../../src/reports/format';
import { writePdf } from '../../src/reports/pdf';
import { asyncRows, run, writeReportFile } from './helpers';

const columns: Column[] = [
  { key: 'id', header: 'ID', type: 'integer' },
  { key: 'name', header: 'Name', type: 'string', width: 30 },
  { key: 'amount', header: 'Amount', type: 'currency' },
  { key: 'day', header: 'Day', type: 'date' },
  { key: 'ok', header: 'Active', type: 'boolean' },
];
const names = ['Zoë Ødegård', 'Łukasz', 'Ελένη', 'Дмитрий'];
const LONG = 'This note is long enough that it has to wrap over several lines inside its narrow cell of the table';

function* rows(n: number) {
  for (let i = 0; i < n; i++) {
    yield { id: i + 1, name: i % 50 === 0 ? `${names[i % 4]} — ${LONG}` : `${names[i % 4]} ${i + 1}`, amount: i * 10.5, day: '2024-03-01', ok: i % 2 === 0 };
  }
}

function pageTexts(file: string): string[] {
  return run('pdftotext', ['-layout', file, '-']).split('\f').slice(0, -1);
}

describe('writePdf', () => {
  let file: string;
  let pages: string[];
  const progress: number[] = [];
  beforeAll(async () => {
    const written = await writeReportFile(writePdf, { title: 'Customers: Zoë & Дмитрий', columns, rows: rows(1200), onProgress: (n) => progress.push(n) }, 'r.pdf');
    file = written.file;
    expect(written.result).toEqual({ rows: 1200 });
    pages = pageTexts(file);
  });

  it('is a sound PDF with the title in its metadata', () => {
    expect(run('qpdf', ['--check', file])).toContain('No syntax or stream encoding errors found');
    const info = run('pdfinfo', [file]);
    expect(info).toMatch(/Title:\s+Customers: Zoë & Дмитрий/);
    expect(info).toMatch(/Page size:\s+595\.\d+ x 841\.\d+ pts \(A4\)/);
    expect(Number(/Pages:\s+(\d+)/.exec(info)?.[1])).toBe(pages.length);
    expect(pages.length).toBeGreaterThan(10);
  });

  it('prints "Page n of m" on every page and the header at the top of every page', () => {
    pages.forEach((text, i) => {
      expect(text).toContain(`Page ${i + 1} of ${pages.length}`);
      expect(text).toMatch(/ID\s+Name\s+Amount\s+Day\s+Active/);
    });
    expect(pages[0]).toContain('Customers: Zoë & Дмитрий');
  });

  it('renders every row, in order, with non-Latin names, formatted values and wrapped text', () => {
    const all = pages.join('\n');
    for (let id = 1; id <= 1200; id++) {
      if ((id - 1) % 50 !== 0) expect(all).toContain(`${names[(id - 1) % 4]} ${id}`);
    }
    expect(all.indexOf('Łukasz 2 ')).toBeLessThan(all.indexOf('Ελένη 3 '));
    expect(all).toContain('Дмитрий 1200');
    expect(all).toMatch(/2\s+Łukasz 2\s+10\.50\s+2024-03-01\s+No/);
    expect(all).toMatch(/1200\s+Дмитрий 1200\s+12,589\.50\s+2024-03-01\s+No/);
    // The long name wraps inside its cell: its words land on several lines, none lost.
    const plain = run('pdftotext', [file, '-']).replace(/\s+/g, ' ');
    expect(plain).toContain('Zoë Ødegård — This note is long enough that it has to wrap over several lines inside its narrow cell of the table');
    expect(progress).toEqual([1000, 1200]);
  });

  it('lays out landscape pages when asked', async () => {
    const { file: wide } = await writeReportFile(writePdf, { title: 'Wide', columns, rows: asyncRows([...rows(3)]), options: { landscape: true } }, 'w.pdf');
    expect(run('pdfinfo', [wide])).toMatch(/Page size:\s+841\.\d+ x 595\.\d+ pts \(A4\)/);
    expect(pageTexts(wide)).toHaveLength(1);
    expect(pageTexts(wide)[0]).toContain('Page 1 of 1');
  });

  it('clips a cell too tall for a page instead of looping or overflowing', async () => {
    const huge = Array.from({ length: 3000 }, (_, i) => `word${i}`).join(' ');
    const { file: tall, result } = await writeReportFile(writePdf, { title: 'Tall', columns, rows: [{ id: 1, name: huge }, { id: 2, name: 'after' }] }, 't.pdf');
    expect(result.rows).toBe(2);
    const texts = pageTexts(tall);
    expect(texts).toHaveLength(2);
    expect(texts[0]).toContain('word0');
    expect(texts[0]).not.toContain('word2999');
    expect(texts[1]).toContain('after');
    expect(texts[1]).toContain('Page 2 of 2');
  });

  it('formats values for print as Excel shows them, integers without grouping', () => {
    const displayText = (column: Column, value: unknown) => cellText(column)(value).text;
    expect(displayText(columns[0], 1234567)).toBe('1234567');
    expect(displayText({ key: 'n', header: 'N', type: 'integer', numberFormat: '#,##0' }, 1234567)).toBe('1,234,567');
    expect(displayText(columns[2], 0.5)).toBe('0.50');
    expect(displayText({ key: 'x', header: 'x', type: 'date' }, '2024-01-31T09:30:00Z')).toBe('2024-01-31 09:30:00');
    expect(displayText({ key: 'x', header: 'x', type: 'number' }, 1 / 3)).toBe('0.3333333333');
    expect(displayText(columns[4], false)).toBe('No');
    expect(displayText(columns[4], 'perhaps')).toBe('perhaps');
    expect(displayText(columns[1], null)).toBe('');
  });

  it('destroys the output and removes its spool when the rows fail', async () => {
    const spools = () => fs.readdirSync(os.tmpdir()).filter((name) => name.startsWith('stowage-spool-')).sort();
    const before = spools();
    async function* failing() {
      yield* rows(10);
      throw new Error('source went away');
    }
    const { Writable } = await import('node:stream');
    const out = new Writable({ write: (_c, _e, cb) => cb() });
    await expect(writePdf({ title: 'x', columns, rows: failing() }, out)).rejects.toThrow('source went away');
    expect(out.destroyed).toBe(true);
    expect(spools()).toEqual(before);
  });

  it('keeps memory flat: 10,000 rows of distinct words fit a 40 MB heap (built dist/ in a child)', () => {
    const script = `
      const { writePdf } = require(${JSON.stringify(path.resolve(__dirname, '../../dist/src/reports/pdf.js'))});
      const { Writable } = require('node:stream');
      function* rows() { for (let i = 0; i < 10000; i++) yield { id: i, name: 'Name' + i + ' x' + (i * 7), amount: i * 1.25 }; }
      const columns = [{ key: 'id', header: 'ID', type: 'integer' }, { key: 'name', header: 'Name', type: 'string' }, { key: 'amount', header: 'Amount', type: 'currency' }];
      writePdf({ title: 't', columns, rows: rows() }, new Writable({ write: (c, e, cb) => cb() })).then((r) => console.log(r.rows));
    `;
    const out = execFileSync(process.execPath, ['--max-old-space-size=40', '-e', script], { encoding: 'utf8' });
    expect(out.trim()).toBe('10000');
  });
});
