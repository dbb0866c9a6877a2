import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PNG } from 'pngjs';
import { FAMILIES } from '../../src/reports/fonts/catalog';
import { visualLine } from '../../src/reports/fonts/runs';
import { writePdf } from '../../src/reports/pdf';
import type { Column } from '../../src/reports/spec';
import { run, writeReportFile } from './helpers';
import { buildTestApp } from '../helpers/app';
import { makeTempDir } from '../helpers/tmp';

const columns: Column[] = [
  { key: 'id', header: 'ID', type: 'integer' },
  { key: 'name', header: 'Name 名前', type: 'string' },
  { key: 'city', header: 'City مدينة', type: 'string' },
  { key: 'amount', header: 'Amount', type: 'currency' },
];
const rows = [
  { id: 1, name: 'Zoë Ødegård', city: 'Oslo', amount: 10 },
  { id: 2, name: '王小明', city: '北京市', amount: 20.5 },
  { id: 3, name: '山田太郎 やまだ', city: '東京', amount: 30 },
  { id: 4, name: '김민준', city: '서울', amount: 40 },
  { id: 5, name: 'محمد علي', city: 'القاهرة', amount: 50 },
  { id: 6, name: 'שלום כהן', city: 'תל אביב', amount: 60 },
  { id: 7, name: 'राहुल शर्मा', city: 'नई दिल्ली', amount: 70 },
  { id: 8, name: 'Mixed: Ana and محمد and 李', city: 'Дмитрий Ελένη', amount: 80 },
];
const TITLE = 'Customers 顧客 العملاء';
/** Of the reference's ink: 3%. */
const TOLERANCE = 0.03;
const REFERENCE = path.join(__dirname, 'fixtures', 'mixed-scripts-page1.png');

/** Embedded fonts as pdffonts lists them: name without the subset prefix, and its emb/sub flags. */
function fonts(file: string): Array<{ name: string; emb: string; sub: string }> {
  return run('pdffonts', [file])
    .split('\n')
    .slice(2)
    .filter(Boolean)
    .map((line) => {
      const cells = line.trim().split(/\s+/);
      return { name: cells[0].replace(/^[A-Z]{6}\+/, ''), emb: cells[cells.length - 5], sub: cells[cells.length - 4] };
    });
}

/** pdftotext wraps right-to-left text in U+202B ... U+202C (embedding marks); the text is between. */
const withoutMarks = (text: string) => text.replace(/[\u202a-\u202e]/g, '');

async function renderPage1(file: string): Promise<PNG> {
  const dir = await makeTempDir('stowage-render-');
  run('pdftoppm', ['-png', '-gray', '-r', '72', '-f', '1', '-l', '1', '-singlefile', file, path.join(dir, 'page')]);
  return PNG.sync.read(fs.readFileSync(path.join(dir, 'page.png')));
}

/**
 * Pixels whose grey level differs by more than a quarter of the range, as a share of the
 * reference's ink (its pixels darker than mid-grey), so the measure is of the text, not the margins.
 */
function differing(page: PNG, reference: PNG): number {
  expect([page.width, page.height]).toEqual([reference.width, reference.height]);
  let count = 0;
  let ink = 0;
  for (let i = 0; i < page.data.length; i += 4) {
    if (Math.abs(page.data[i] - reference.data[i]) > 64) count++;
    if (reference.data[i] < 128) ink++;
  }
  return count / ink;
}

describe('PDF reports in every script', () => {
  let file: string;
  // Spools go here, not to os.tmpdir(), which pdf.test.ts watches for leftovers.
  let tempDir: string;
  beforeAll(async () => {
    tempDir = await makeTempDir('stowage-scripts-');
    file = (await writeReportFile(writePdf, { title: TITLE, columns, rows, tempDir }, 'mixed.pdf')).file;
  });

  it('embeds every font it draws with, as a subset, and is a sound PDF', () => {
    expect(run('qpdf', ['--check', file])).toContain('No syntax or stream encoding errors found');
    const listed = fonts(file);
    expect(listed.map((f) => f.name).sort()).toEqual(
      [
        'DejaVuSans',
        'DejaVuSans-Bold',
        'NotoSansArabic-Bold',
        'NotoSansArabic-Regular',
        'NotoSansDevanagari-Regular',
        'NotoSansHebrew-Regular',
        'NotoSansKR-Regular',
        'NotoSansSC-Regular',
      ].sort(),
    );
    for (const f of listed) expect(f).toEqual({ name: f.name, emb: 'yes', sub: 'yes' });
  });

  it('gives every name back to pdftotext, right-to-left ones in reading order', () => {
    const text = withoutMarks(run('pdftotext', [file, '-']));
    for (const r of rows) {
      expect(text).toContain(r.name.startsWith('Mixed') ? 'and 李' : r.name);
      expect(text).toContain(r.city);
    }
    expect(text).toContain('Customers 顧客 العملاء');
    // In -layout mode a right-to-left cell comes back on its row, in reading order. Devanagari is
    // spelled out by an ActualText span (its shaped glyphs are reordered: the i-matra before its
    // consonant), which poppler places on a line of its own in -layout mode, so it is not checked here.
    const layout = withoutMarks(run('pdftotext', ['-layout', file, '-']));
    expect(layout).toMatch(/5\s+محمد علي\s+القاهرة\s+50\.00/);
    expect(layout).toMatch(/6\s+שלום כהן\s+תל אביב\s+60\.00/);
    expect(layout).toMatch(/2\s+王小明\s+北京市\s+20\.50/);
    expect(layout).toMatch(/4\s+김민준\s+서울\s+40\.00/);
  });

  it('renders page 1 like the reviewed reference image', async () => {
    const page = await renderPage1(file);
    // After a deliberate change: UPDATE_REFERENCE=1, then look at the new image before committing it.
    if (process.env.UPDATE_REFERENCE === '1') fs.writeFileSync(REFERENCE, PNG.sync.write(page));
    const reference = PNG.sync.read(fs.readFileSync(REFERENCE));
    // Anti-aliasing may move between poppler versions; a missing font or a reversed run moves far more.
    expect(differing(page, reference)).toBeLessThan(TOLERANCE);
    // The comparison has teeth: the same report with each name spelled backwards is far outside it
    // (36% of the ink differs).
    const { file: other } = await writeReportFile(writePdf, { title: TITLE, columns, tempDir, rows: rows.map((r) => ({ ...r, name: [...r.name].reverse().join('') })) }, 'other.pdf');
    expect(differing(await renderPage1(other), reference)).toBeGreaterThan(TOLERANCE);
  });

  it('keeps a Latin-only report to DejaVu alone, subset and small', async () => {
    const latin = rows.slice(0, 1).concat(Array.from({ length: 200 }, (_, i) => ({ id: i + 10, name: `Łukasz Ελένη Дмитрий ${i}`, city: 'Zürich', amount: i })));
    const { file: small } = await writeReportFile(writePdf, { title: 'Latin', tempDir, columns: columns.map((c) => ({ ...c, header: c.header.split(' ')[0] })), rows: latin }, 'latin.pdf');
    expect(fonts(small).map((f) => f.name).sort()).toEqual(['DejaVuSans', 'DejaVuSans-Bold']);
    expect(fs.statSync(small).size).toBeLessThan(60_000);
  });

  it('wraps CJK text by its real width and keeps every character', async () => {
    const long = '北京市朝阳区建国门外大街一号国际贸易中心写字楼三十层东京都千代田区丸の内서울특별시 중구 세종대로';
    const { file: wrapped } = await writeReportFile(writePdf, { title: 'Wrap', tempDir, columns: [{ key: 'a', header: 'A', type: 'string', width: 12 }, { key: 'b', header: 'B', type: 'string' }], rows: [{ a: long, b: 'x' }] }, 'wrap.pdf');
    const text = run('pdftotext', ['-raw', wrapped, '-']);
    const lines = text.split('\n').filter((l) => /[\u4e00-\u9fff\uac00-\ud7af\u3040-\u30ff]/.test(l));
    expect(lines.length).toBeGreaterThan(2);
    expect(lines.join('').replace(/\s|x/g, '')).toBe(long.replace(/\s/g, ''));
  });
});

describe('mixed-script PDFs as a user gets them', () => {
  it('builds one through the API on a report thread, with the fallback fonts found from dist/', async () => {
    const t = await buildTestApp();
    const worker = t.startTaskWorker();
    try {
      const task = await t.http().post('/v1/reports?wait=25').send({ format: 'pdf', title: TITLE, columns, rows });
      expect(task.status).toBe(201);
      expect(task.body.status).toBe('succeeded');
      const content = await t.http().get(task.body.outputs[0].links.content).buffer(true).parse((res, done) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => done(null, Buffer.concat(chunks)));
      });
      const dir = await makeTempDir('stowage-api-pdf-');
      const file = path.join(dir, 'report.pdf');
      fs.writeFileSync(file, content.body as Buffer);
      expect(fonts(file).map((f) => f.name)).toEqual(expect.arrayContaining(['NotoSansSC-Regular', 'NotoSansKR-Regular', 'NotoSansArabic-Regular']));
      expect(withoutMarks(run('pdftotext', [file, '-']))).toContain('محمد علي');
    } finally {
      await worker.stop(0);
      await t.close();
    }
  });

  it('keeps memory flat: 5,000 mixed-script rows fit a 40 MB heap (built dist/ in a child)', async () => {
    const tempDir = await makeTempDir('stowage-scripts-');
    const script = `
      const { writePdf } = require(${JSON.stringify(path.resolve(__dirname, '../../dist/src/reports/pdf.js'))});
      const { Writable } = require('node:stream');
      const names = ['王小明', '山田太郎', '김민준', 'محمد علي', 'שלום כהן', 'राहुल शर्मा'];
      function* rows() { for (let i = 0; i < 5000; i++) yield { id: i, name: names[i % 6] + ' ' + i, amount: i * 1.25 }; }
      const columns = [{ key: 'id', header: 'ID', type: 'integer' }, { key: 'name', header: 'Name', type: 'string' }, { key: 'amount', header: 'Amount', type: 'currency' }];
      writePdf({ title: 't', columns, rows: rows(), tempDir: process.argv[1] }, new Writable({ write: (c, e, cb) => cb() })).then((r) => console.log(r.rows));
    `;
    const out = execFileSync(process.execPath, ['--max-old-space-size=40', '-e', script, tempDir], { encoding: 'utf8' });
    expect(out.trim()).toBe('5000');
  });
});

describe('visualLine', () => {
  const family = (id: string) => FAMILIES.findIndex((f) => f.id === id);

  it('keeps Latin, Greek and Cyrillic in one DejaVu run', () => {
    expect(visualLine('Zoë Дмитрий Ελένη 1,234.50')).toEqual({ runs: [{ text: 'Zoë Дмитрий Ελένη 1,234.50', family: 0 }], rtl: false });
  });

  it('picks a font per run by glyph coverage, spaces staying in their run', () => {
    expect(visualLine('Ana 王小明 김민준')).toEqual({
      runs: [
        { text: 'Ana ', family: 0 },
        { text: '王小明 ', family: family('sc') },
        { text: '김민준', family: family('kr') },
      ],
      rtl: false,
    });
    expect(visualLine('राहुल').runs).toEqual([{ text: 'राहुल', family: family('devanagari'), actual: 'राहुल' }]);
  });

  it('orders right-to-left runs visually: a Hebrew line reads from the right, numbers stay left to right', () => {
    // Words go last first; fontkit reverses the glyphs of each Hebrew or Arabic word itself.
    const hebrew = family('hebrew');
    expect(visualLine('שלום כהן 2024')).toEqual({
      runs: [
        { text: '2024', family: hebrew },
        { text: ' ', family: hebrew },
        { text: 'כהן', family: hebrew },
        { text: ' ', family: hebrew },
        { text: 'שלום', family: hebrew },
      ],
      rtl: true,
    });
    expect(visualLine('Total: محمد علي!')).toEqual({
      runs: [
        { text: 'Total: ', family: 0 },
        { text: 'علي', family: family('arabic') },
        { text: ' ', family: family('arabic') },
        { text: 'محمد', family: family('arabic') },
        // Punctuation stays in the run it follows when that font has it.
        { text: '!', family: family('arabic'), actual: '!' },
      ],
      rtl: false,
    });
  });
});

describe('PDF page furniture and sections in every script', () => {
  it('draws the page header, footer and section names in the fonts their scripts need', async () => {
    const tempDir = await makeTempDir('stowage-scripts-');
    const table: Column[] = [
      { key: 'team', header: 'Team', type: 'string' },
      { key: 'amount', header: 'Amount', type: 'currency' },
    ];
    // Chinese only in the header, Arabic only in the footer, Hebrew only in a section's name.
    const { file } = await writeReportFile(
      writePdf,
      {
        title: 'Furniture',
        tempDir,
        columns: table,
        rows: [],
        sheets: [
          { name: 'Sales', columns: table, rows: [{ team: 'North', amount: 1 }, { team: 'South', amount: 2 }] },
          { name: 'לקוחות', columns: table, rows: [{ team: 'East', amount: 3 }] },
        ],
        options: { header: '季度报告 {title}', footer: 'صفحة {page}', groupBy: ['team'] },
      },
      'furniture.pdf',
    );
    expect(run('qpdf', ['--check', file])).toContain('No syntax or stream encoding errors found');
    const names = fonts(file).map((f) => f.name);
    expect(names).toEqual(expect.arrayContaining(['NotoSansSC-Regular', 'NotoSansArabic-Regular', 'NotoSansHebrew-Bold']));
    const text = withoutMarks(run('pdftotext', [file, '-']));
    expect(text).toContain('季度报告 Furniture');
    expect(text).toContain('לקוחות');
    expect(text).toContain('صفحة');
    // Groups and totals carried into each section.
    expect(text).toContain('North total');
    expect(text).toContain('East total');
  });
});
