import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { benchColumns, benchGroupedColumns, benchRows } from './report-data';

/*
 * Report-writer benchmark. Each run is a separate child process, so the peak RSS it reports
 * (process.resourceUsage().maxRSS) belongs to that run alone. Wall time depends on what else the
 * machine is doing; CPU time (user + system) is printed beside it as the steadier figure.
 *
 * Baselines:
 * - exceljs default: stream.xlsx.WorkbookWriter with only a filename (its defaults already skip
 *   shared strings and styles, so dates come out as bare numbers).
 * - exceljs tuned: the fastest exceljs we found: useSharedStrings false, useStyles false and
 *   zlib level 1 (ours uses level 1 too). Still an object per cell and its own XML and zip layers.
 * - pdfkit table: the loop most code writes with pdfkit (measure each cell with heightOfString,
 *   break the page, doc.text each cell), same cell texts and embedded font, no repeated header,
 *   no page numbers. pdfkit 0.20's own doc.table() was not usable as a baseline: 10,000 rows ran
 *   for over 10 minutes at 285 MB before we stopped it.
 */

type Case = 'xlsx-ours' | 'xlsx-exceljs-default' | 'xlsx-exceljs-tuned' | 'pdf-ours' | 'pdf-ours-mixed' | 'pdf-pdfkit-table' | 'xlsx-grouped-ours' | 'pdf-grouped-ours';
const OURS = new Set<Case>(['xlsx-ours', 'pdf-ours', 'pdf-ours-mixed', 'xlsx-grouped-ours', 'pdf-grouped-ours']);

interface Measure {
  case: Case;
  rows: number;
  wallMs: number;
  cpuMs: number;
  maxRssMb: number;
  bytes: number;
}

async function exceljs(file: string, rows: number, tuned: boolean): Promise<void> {
  const { default: ExcelJS } = await import('exceljs');
  const wb = new ExcelJS.stream.xlsx.WorkbookWriter(
    tuned ? { filename: file, useSharedStrings: false, useStyles: false, zip: { zlib: { level: 1 } } } : { filename: file },
  );
  const sheet = wb.addWorksheet('Bench');
  sheet.columns = benchColumns.map((c) => ({ header: c.header, key: c.key, width: 14 }));
  for (const row of benchRows(rows)) sheet.addRow(row).commit();
  sheet.commit();
  await wb.commit();
}

/** The table most code draws with pdfkit: measure each row's cells, break the page, draw them. */
async function pdfkitTable(file: string, rows: number): Promise<void> {
  const { default: PDFDocument } = await import('pdfkit');
  const { FONT_BOLD, FONT_REGULAR } = await import('../src/reports/pdf');
  const { cellText } = await import('../src/reports/format');
  const cells = benchColumns.map((c) => cellText(c));
  const doc = new PDFDocument({ size: 'A4', margin: 36 });
  const done = new Promise<void>((resolve, reject) => doc.pipe(fs.createWriteStream(file)).on('finish', resolve).on('error', reject));
  doc.registerFont('regular', FONT_REGULAR);
  doc.registerFont('bold', FONT_BOLD);
  doc.font('bold').fontSize(14).text('Bench');
  doc.font('regular').fontSize(8);
  const width = (doc.page.width - 72) / benchColumns.length;
  const bottom = doc.page.height - 36;
  let y = doc.y + 10;
  for (const row of [{ header: true }, ...benchRows(rows)]) {
    const texts = benchColumns.map((c, i) => ('header' in row ? c.header : cells[i](row[c.key]).text));
    const height = Math.max(...texts.map((t) => doc.heightOfString(t, { width: width - 6 }))) + 6;
    if (y + height > bottom) {
      doc.addPage();
      y = 36;
    }
    texts.forEach((t, i) => doc.text(t, 36 + i * width + 3, y + 3, { width: width - 6 }));
    y += height;
  }
  doc.end();
  await done;
}

async function runCase(name: Case, rows: number, file: string): Promise<void> {
  const input = { title: 'Bench', columns: benchColumns, rows: benchRows(rows) };
  // Grouped: a subtotal row after every 500 rows (a team), and a grand total.
  const grouped = { title: 'Bench', columns: benchGroupedColumns, rows: benchRows(rows), options: { groupBy: ['team'], totalsRow: true } };
  switch (name) {
    case 'xlsx-grouped-ours': {
      const { writeXlsx } = await import('../src/reports/xlsx');
      await writeXlsx(grouped, fs.createWriteStream(file));
      return;
    }
    case 'pdf-grouped-ours': {
      const { writePdf } = await import('../src/reports/pdf');
      await writePdf(grouped, fs.createWriteStream(file));
      return;
    }
    case 'xlsx-ours': {
      const { writeXlsx } = await import('../src/reports/xlsx');
      await writeXlsx(input, fs.createWriteStream(file));
      return;
    }
    case 'xlsx-exceljs-default':
      return exceljs(file, rows, false);
    case 'xlsx-exceljs-tuned':
      return exceljs(file, rows, true);
    case 'pdf-ours': {
      const { writePdf } = await import('../src/reports/pdf');
      await writePdf(input, fs.createWriteStream(file));
      return;
    }
    case 'pdf-ours-mixed': {
      const { writePdf } = await import('../src/reports/pdf');
      await writePdf({ ...input, rows: benchRows(rows, true) }, fs.createWriteStream(file));
      return;
    }
    case 'pdf-pdfkit-table':
      return pdfkitTable(file, rows);
  }
}

/**
 * In the child: run one case into a temp file and print its measure as JSON. Each case loads only
 * the modules it uses, so no run pays for another's in time or memory. Wall and CPU time count
 * from the start of the case, module loading included; peak RSS is the process's.
 */
async function child(name: Case, rows: number): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-bench-'));
  const file = path.join(dir, 'out');
  try {
    const start = process.hrtime.bigint();
    const cpu = process.cpuUsage();
    await runCase(name, rows, file);
    const wallMs = Number(process.hrtime.bigint() - start) / 1e6;
    const used = process.cpuUsage(cpu);
    const usage = process.resourceUsage();
    const measure: Measure = {
      case: name,
      rows,
      wallMs,
      cpuMs: (used.user + used.system) / 1000,
      maxRssMb: usage.maxRSS / 1024,
      bytes: fs.statSync(file).size,
    };
    process.stdout.write(JSON.stringify(measure) + '\n');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function measure(name: Case, rows: number): Promise<Measure> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [__filename, '--child', name, String(rows)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    proc.on('error', reject);
    proc.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as Measure) : reject(new Error(`${name} ${rows} exited with ${code}`))));
  });
}

function line(m: Measure, baseline?: Measure): string {
  const fmt = (n: number, d = 0) => n.toFixed(d).padStart(8);
  const ratio = baseline ? `  time ${(m.wallMs / baseline.wallMs).toFixed(2)}x, cpu ${(m.cpuMs / baseline.cpuMs).toFixed(2)}x, rss ${(m.maxRssMb / baseline.maxRssMb).toFixed(2)}x of ${baseline.case}` : '';
  return `${m.case.padEnd(22)}${String(m.rows).padStart(9)} rows ${fmt(m.wallMs / 1000, 2)} s wall ${fmt(m.cpuMs / 1000, 2)} s cpu ${fmt(m.maxRssMb)} MB peak RSS ${fmt(m.bytes / 1e6, 1)} MB file${ratio}`;
}

/** Runs every case in its own process and prints time, CPU, peak RSS and ratios to baseline. */
export async function runReportsBench(): Promise<Measure[]> {
  const results: Measure[] = [];
  // The first case of a group is the baseline the others are compared with.
  const groups: Array<{ title: string; rows: number; cases: Case[] }> = [
    { title: 'xlsx, 10 columns', rows: 100_000, cases: ['xlsx-exceljs-default', 'xlsx-exceljs-tuned', 'xlsx-ours'] },
    { title: 'xlsx, 10 columns', rows: 1_000_000, cases: ['xlsx-exceljs-default', 'xlsx-exceljs-tuned', 'xlsx-ours'] },
    { title: 'pdf, 10 columns', rows: 10_000, cases: ['pdf-pdfkit-table', 'pdf-ours'] },
    { title: 'pdf, 10 columns', rows: 100_000, cases: ['pdf-pdfkit-table', 'pdf-ours'] },
    { title: 'xlsx grouped (subtotal every 500 rows) against plain', rows: 1_000_000, cases: ['xlsx-ours', 'xlsx-grouped-ours'] },
    { title: 'pdf grouped (heading and subtotal every 500 rows) against plain', rows: 100_000, cases: ['pdf-ours', 'pdf-grouped-ours'] },
    // Names and cities in seven scripts (five fallback fonts, right-to-left runs), against the same
    // report in Latin, Greek and Cyrillic (DejaVu alone).
    { title: 'pdf, 10 columns, mixed scripts', rows: 10_000, cases: ['pdf-ours', 'pdf-ours-mixed'] },
    { title: 'pdf, 10 columns, mixed scripts', rows: 100_000, cases: ['pdf-ours', 'pdf-ours-mixed'] },
  ];
  const only = process.env.BENCH_REPORTS;
  console.log(`Report writers on ${os.cpus().length} cores, Node ${process.version}; one child process per run.`);
  for (const group of groups) {
    if (only && !group.title.startsWith(only)) continue;
    console.log(`\n${group.title}, ${group.rows} rows`);
    // The first case is the baseline; ours are compared with it and with any other baseline.
    const baseline: Measure[] = [];
    for (const [i, name] of group.cases.entries()) {
      const m = await measure(name, group.rows);
      results.push(m);
      const ours = OURS.has(name) && i > 0;
      console.log(line(m, ours ? baseline[0] : undefined));
      if (ours) baseline.slice(1).forEach((b) => console.log(`${''.padEnd(22)} vs ${b.case}: time ${(m.wallMs / b.wallMs).toFixed(2)}x, cpu ${(m.cpuMs / b.cpuMs).toFixed(2)}x, rss ${(m.maxRssMb / b.maxRssMb).toFixed(2)}x`));
      else baseline.push(m);
    }
  }
  return results;
}

if (require.main === module) {
  const [flag, name, rows] = process.argv.slice(2);
  const run = flag === '--child' ? child(name as Case, Number(rows)) : runReportsBench().then(() => undefined);
  run.catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
