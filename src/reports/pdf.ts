import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import PDFDocument from 'pdfkit';
import type { Row } from './spec';
import { cellText, isNumeric, type CellText } from './format';
import { sampleRows, sampleTexts, totalSample } from './format/widths';
import { groupColumns, Groups, summedValue } from './groups';
import { WidthTable, wrapText } from './pdf-wrap';
import { Spool } from './spool';
import { drainedOrClosed, PROGRESS_EVERY, type ReportInput, type ReportResult } from './writer';

/*
 * DejaVu Sans covers Latin, Greek and Cyrillic (Zoë Ødegård, Łukasz, Ελένη, Дмитрий). It comes
 * from the dejavu-fonts-ttf npm package, so `npm ci` provides it on every machine; pdfkit embeds
 * only the glyphs used.
 */
const FONT_DIR = path.join(path.dirname(require.resolve('dejavu-fonts-ttf/package.json')), 'ttf');
export const FONT_REGULAR = path.join(FONT_DIR, 'DejaVuSans.ttf');
export const FONT_BOLD = path.join(FONT_DIR, 'DejaVuSans-Bold.ttf');

const MARGIN = 36;
const TITLE_SIZE = 14;
const TITLE_GAP = 10;
const BODY_SIZE = 8;
const HEADER_SIZE = 8;
const FOOTER_SIZE = 8;
const FOOTER_SPACE = 20;
const PAD = 3;
/** Inset left and right of each cell: twice this parts a right-aligned number from the next column's text. */
const H_PAD = 5;
const RULE_COLOR = '#c8c8c8';
const HEADER_FILL = '#d9e1f2';

const rightAligned = isNumeric;
/** Colours a number format may ask for ([Red]...) that print as themselves; others print black. */
const PRINTED_COLORS = new Set(['blue', 'cyan', 'green', 'magenta', 'red', 'yellow']);
const GROUP_INDENT = 10;
const TOTAL_RULE_COLOR = '#404040';

interface Geometry {
  pageWidth: number;
  pageHeight: number;
  /** Left edge of each column, and its width. */
  xs: number[];
  widths: number[];
  headerHeight: number;
  titleHeight: number;
  /** Lowest y a row may reach before the footer. */
  bottom: number;
  lineHeight: number;
}

/** The narrowest a text column gets before every column is scaled down to fit the page. */
const MIN_TEXT_CHARS = 6;
/** No column measured from its content takes more than this share of the page: long text wraps. */
const MAX_COLUMN_SHARE = 0.4;

/**
 * Column widths: a given `width` (in Excel's character units) is honoured; others are measured in
 * the body font from the header's longest word and the first rows' shown texts (format/widths.ts),
 * totals in bold, capped at MAX_COLUMN_SHARE of the page. Too wide for the page: text columns give
 * way first, down to MIN_TEXT_CHARS, then all shrink in proportion. Room to spare goes to text
 * columns (to all when there are none).
 */
function columnWidths(doc: PDFKit.PDFDocument, input: ReportInput, sample: Row[], groups: Groups, totals: boolean, usable: number): number[] {
  const { columns } = input;
  doc.font('regular').fontSize(BODY_SIZE);
  const body = new WidthTable(doc);
  const digit = body.measure('0');
  const given = columns.map((c) => c.width !== undefined);
  const natural = columns.map((c, i) => {
    if (c.width !== undefined) return c.width * digit + 2 * H_PAD;
    doc.font('bold').fontSize(HEADER_SIZE);
    let width = Math.max(...c.header.split(/\s+/).map((word) => doc.widthOfString(word)));
    if (totals && groups.isSummed(i)) width = Math.max(width, doc.widthOfString(totalSample(c, sample, (v) => summedValue(c, v))));
    doc.font('regular').fontSize(BODY_SIZE);
    for (const text of sampleTexts(c, sample)) for (const line of text.split('\n')) width = Math.max(width, body.measure(line));
    return Math.min(width + 2 * H_PAD, usable * MAX_COLUMN_SHARE);
  });
  const text = columns.map((c, i) => c.type === 'string' && !given[i]);
  const sum = (ws: number[]) => ws.reduce((a, b) => a + b, 0);
  let widths = natural;
  const over = sum(widths) - usable;
  if (over > 0) {
    const floor = MIN_TEXT_CHARS * digit + 2 * H_PAD;
    const give = widths.reduce((room, w, i) => room + (text[i] ? Math.max(0, w - floor) : 0), 0);
    if (give > 0) widths = widths.map((w, i) => (text[i] ? w - (Math.max(0, w - floor) / give) * Math.min(over, give) : w));
  } else if (over < 0) {
    const growing = text.some(Boolean) ? text : columns.map(() => true);
    const base = sum(widths.filter((_, i) => growing[i]));
    widths = widths.map((w, i) => (growing[i] ? w - (over * w) / base : w));
  }
  const total = sum(widths);
  return total <= usable + 0.01 ? widths : widths.map((w) => (w / total) * usable);
}

function geometry(doc: PDFKit.PDFDocument, input: ReportInput, sample: Row[], groups: Groups, totals: boolean): Geometry {
  const { width: pageWidth, height: pageHeight } = doc.page;
  const usable = pageWidth - 2 * MARGIN;
  const widths = columnWidths(doc, input, sample, groups, totals, usable);
  const xs = widths.map((_, i) => MARGIN + widths.slice(0, i).reduce((a, b) => a + b, 0));
  doc.font('bold').fontSize(HEADER_SIZE);
  const headerHeight = Math.max(...input.columns.map((c, i) => doc.heightOfString(c.header, { width: widths[i] - 2 * H_PAD }))) + 2 * PAD;
  doc.fontSize(TITLE_SIZE);
  const titleHeight = doc.heightOfString(input.title, { width: usable }) + TITLE_GAP;
  doc.font('regular').fontSize(BODY_SIZE);
  const bottom = pageHeight - MARGIN - FOOTER_SPACE;
  return {
    pageWidth,
    pageHeight,
    xs,
    widths,
    headerHeight,
    titleHeight,
    bottom,
    lineHeight: doc.currentLineHeight(true),
  };
}

/**
 * pdfkit caches the shaping of every distinct word for the whole document, so with ids, amounts
 * and names in the data that cache grows with the row count (a 50,000-row report ran out of a
 * 60 MB heap). Emptying it at each page keeps memory flat. Measured alternatives were slower:
 * turning the cache off (fontLayoutCache: false) 2.5x, and emptying it every 20 pages instead of
 * every page was slower too (more garbage to collect) and used 50% more memory. This reaches into
 * pdfkit's internals (`_fontFamilies`, `layoutCache`); if they change, it does nothing and the
 * memory test in test/reports/pdf.test.ts fails.
 */
function forgetWordLayouts(doc: PDFKit.PDFDocument): void {
  const families = (doc as unknown as { _fontFamilies?: Record<string, { layoutCache?: object }> })._fontFamilies;
  for (const font of Object.values(families ?? {})) {
    if (font.layoutCache) font.layoutCache = Object.create(null);
  }
}

/** Both passes break pages with this, so they agree; the slack absorbs rounding in clipped rows. */
function fits(g: Geometry, y: number, height: number): boolean {
  return y + height <= g.bottom + 0.01;
}

const enum Kind {
  Data = 0,
  /** A group's heading: its text in the first cell, spanning the table, indented by level. */
  Heading = 1,
  /** A subtotal or the grand total, in bold under a rule. */
  Total = 2,
}

/**
 * One row as laid out: its height, its kind, whether a page starts before it (pass 1 decides, pass
 * 2 follows), its cells' colours from their number formats (0 for none), then each cell's lines
 * joined by "\n".
 */
type LaidOutRow = [number, Kind, 0 | 1, 0 | string[], ...string[]];

/**
 * Pass 1: formats, wraps and measures every row, spooling the result to disk and counting the
 * pages, so the drawing pass can print "Page n of m" without pdfkit's bufferPages (which keeps
 * every page in memory). Cells are wrapped here (pdf-wrap.ts) rather than by pdfkit, so both
 * passes agree on every line and the drawing pass only places single lines. With options.groupBy,
 * each group gets a heading (kept with its first row) and a subtotal row; groups and totalsRow
 * end with a grand total.
 */
async function layOut(
  input: ReportInput,
  rows: AsyncIterable<Row>,
  g: Geometry,
  widths: WidthTable,
  groups: Groups,
  totalsRow: boolean,
  spool: Spool<LaidOutRow>,
): Promise<{ pages: number; rows: number }> {
  const { columns } = input;
  let y = MARGIN + g.titleHeight + g.headerHeight;
  let pages = 1;
  let count = 0;
  let onPage = 0;
  const rooms = g.widths.map((w) => w - 2 * H_PAD);
  const tableWidth = g.widths.reduce((a, b) => a + b, 0);
  const texts: CellText[] = columns.map(cellText);
  const sums = columns.map(() => 0);
  const rowHeight = g.lineHeight + 2 * PAD;
  // A cell never gets more lines than fit under the header on a page of its own.
  const maxLines = Math.max(1, Math.floor((g.bottom - MARGIN - g.headerHeight - 2 * PAD) / g.lineHeight));

  const place = async (kind: Kind, cells: string[], colors: 0 | string[], keepWith = 0) => {
    let lines = 1;
    const wrapped = cells.map((text, i) => {
      const room = kind === Kind.Heading ? tableWidth - 2 * H_PAD - GROUP_INDENT * i : rooms[i];
      const cell = text ? wrapText(text, room, widths, maxLines) : [''];
      lines = Math.max(lines, cell.length);
      return cell.join('\n');
    });
    let height = lines * g.lineHeight + 2 * PAD;
    let newPage: 0 | 1 = 0;
    if (!fits(g, y, height + keepWith) && onPage > 0) {
      pages++;
      y = MARGIN + g.headerHeight;
      onPage = 0;
      newPage = 1;
    }
    // A row taller than the room left on a page of its own is clipped to that room.
    if (!fits(g, y, height)) height = Math.floor((g.bottom - y - 2 * PAD) / g.lineHeight) * g.lineHeight + 2 * PAD;
    y += height;
    onPage++;
    await spool.write([height, kind, newPage, colors, ...wrapped]);
  };
  const totalCells = (label: { column: number; text: string }, values: number[]) =>
    columns.map((_, i) => (groups.isSummed(i) ? texts[i](values[i]).text : i === label.column ? label.text : ''));
  const totalColors = (values: number[]) => colorsOf(columns.map((_, i) => (groups.isSummed(i) ? texts[i](values[i]).color : undefined)));
  const labelColumn = Math.max(0, columns.findIndex((_, i) => !groups.isSummed(i)));

  for await (const row of rows) {
    if (groups.levels) {
      for (const e of groups.before(row)) {
        if (e.kind === 'open') {
          // The heading's text goes in cell level-1, which sets its indent; it keeps with a row.
          const cells = columns.map((_, i) => (i === e.level - 1 ? `${columns[e.column].header}: ${e.label}` : ''));
          await place(Kind.Heading, cells.slice(0, e.level), 0, rowHeight);
        } else {
          await place(Kind.Total, totalCells({ column: e.column, text: `${e.label} total` }, e.sums), totalColors(e.sums));
        }
      }
      groups.add(row);
    }
    const formatted = columns.map((c, i) => texts[i](row[c.key]));
    if (totalsRow) {
      columns.forEach((c, i) => {
        const n = groups.isSummed(i) ? summedValue(c, row[c.key]) : undefined;
        if (n !== undefined) sums[i] += n;
      });
    }
    await place(
      Kind.Data,
      formatted.map((f) => f.text),
      colorsOf(formatted.map((f) => f.color)),
    );
    count++;
  }
  for (const e of groups.end()) {
    if (e.kind === 'close') await place(Kind.Total, totalCells({ column: e.column, text: `${e.label} total` }, e.sums), totalColors(e.sums));
  }
  if (totalsRow && count > 0) await place(Kind.Total, totalCells({ column: labelColumn, text: 'Total' }, sums), totalColors(sums));
  return { pages, rows: count };
}

/** The printable colours of a row's cells, or 0 when all are black (most rows: a smaller spool). */
function colorsOf(colors: (string | undefined)[]): 0 | string[] {
  const printed = colors.map((c) => (c && PRINTED_COLORS.has(c) ? c : ''));
  return printed.some(Boolean) ? printed : 0;
}

function drawHeader(doc: PDFKit.PDFDocument, input: ReportInput, g: Geometry, y: number): number {
  const width = g.pageWidth - 2 * MARGIN;
  doc.rect(MARGIN, y, width, g.headerHeight).fill(HEADER_FILL);
  doc.fillColor('black').font('bold').fontSize(HEADER_SIZE);
  input.columns.forEach((c, i) => {
    doc.text(c.header, g.xs[i] + H_PAD, y + PAD, { width: g.widths[i] - 2 * H_PAD, align: rightAligned(c) ? 'right' : 'left' });
  });
  doc.font('regular').fontSize(BODY_SIZE);
  return y + g.headerHeight;
}

function drawFooter(doc: PDFKit.PDFDocument, g: Geometry, page: number, pages: number): void {
  doc.font('regular').fontSize(FOOTER_SIZE).fillColor('black');
  const text = `Page ${page} of ${pages}`;
  const x = (g.pageWidth - doc.widthOfString(text)) / 2;
  doc.text(text, x, g.pageHeight - MARGIN - FOOTER_SIZE, { lineBreak: false });
  doc.fontSize(BODY_SIZE);
}

/** Pass 2: draws the spooled rows, breaking pages where pass 1 did. */
async function draw(doc: PDFKit.PDFDocument, input: ReportInput, g: Geometry, widths: WidthTable, spool: Spool<LaidOutRow>, pages: number, out: Writable): Promise<void> {
  const { columns, onProgress } = input;
  const right = columns.map(rightAligned);
  const width = g.pageWidth - 2 * MARGIN;
  let page = 1;
  doc.font('bold').fontSize(TITLE_SIZE).text(input.title, MARGIN, MARGIN, { width });
  let y = drawHeader(doc, input, g, MARGIN + g.titleHeight);
  let done = 0;
  for await (const [height, kind, newPage, colors, ...cells] of spool.read()) {
    if (newPage) {
      drawFooter(doc, g, page, pages);
      // pdfkit writes a page out when the next begins; wait here if the reader is behind.
      if (out.writableNeedDrain) await drainedOrClosed(out);
      doc.addPage();
      forgetWordLayouts(doc);
      page++;
      y = drawHeader(doc, input, g, MARGIN);
    }
    const bold = kind !== Kind.Data;
    if (bold) doc.font('bold');
    if (kind === Kind.Total) doc.moveTo(MARGIN, y).lineTo(MARGIN + width, y).lineWidth(0.75).strokeColor(TOTAL_RULE_COLOR).stroke();
    const room = Math.round((height - 2 * PAD) / g.lineHeight);
    for (let i = 0; i < cells.length; i++) {
      if (!cells[i]) continue;
      if (colors) doc.fillColor(colors[i] || 'black');
      const lines = cells[i].split('\n');
      for (let k = 0; k < lines.length && k < room; k++) {
        // Lines that a clipped row cannot show end the cell with an ellipsis.
        const line = k === room - 1 && lines.length > room ? `${lines[k]}…` : lines[k];
        // Bold rows are few: measured by pdfkit; body rows by the faster width table.
        const measure = () => (bold ? doc.widthOfString(line) : widths.measure(line));
        const x =
          kind === Kind.Heading ? MARGIN + H_PAD + GROUP_INDENT * i : right[i] ? g.xs[i] + g.widths[i] - H_PAD - measure() : g.xs[i] + H_PAD;
        doc.text(line, x, y + PAD + k * g.lineHeight, { lineBreak: false });
      }
    }
    if (colors) doc.fillColor('black');
    if (bold) doc.font('regular');
    y += height;
    doc.moveTo(MARGIN, y).lineTo(MARGIN + width, y).lineWidth(0.5).strokeColor(RULE_COLOR).stroke();
    if (kind === Kind.Data) {
      done++;
      if (done % PROGRESS_EVERY === 0) onProgress?.(done);
    }
  }
  drawFooter(doc, g, page, pages);
  onProgress?.(done);
}

/**
 * A PDF table: the title, then one row per record with wrapping cells in columns sized from their
 * content, numbers shown as their format codes ask (src/reports/format), optional group headings,
 * subtotals and totals, the header repeated at the top of every page, "Page n of m" at the foot of each, A4 portrait or landscape. Rows are read
 * once; memory stays flat however many there are (see layOut).
 */
export async function writePdf(input: ReportInput, out: Writable): Promise<ReportResult> {
  const doc = new PDFDocument({
    size: 'A4',
    layout: input.options?.landscape ? 'landscape' : 'portrait',
    // Margins are applied here, by hand, so pdfkit never starts a page of its own.
    margin: 0,
    info: { Title: input.title, Creator: 'stowage' },
    displayTitle: true,
  });
  doc.registerFont('regular', FONT_REGULAR);
  doc.registerFont('bold', FONT_BOLD);
  const spool = await Spool.create<LaidOutRow>(input.tempDir);
  const written = pipeline(doc, out);
  try {
    const options = input.options ?? {};
    const groups = new Groups(input.columns, groupColumns(input.columns, options.groupBy));
    const totalsRow = Boolean(options.totalsRow) || groups.levels > 0;
    const sampled = await sampleRows(input.rows);
    const g = geometry(doc, input, sampled.sample, groups, totalsRow);
    const widths = new WidthTable(doc);
    const { pages, rows } = await layOut(input, sampled.rows, g, widths, groups, totalsRow, spool);
    await spool.finish();
    await draw(doc, input, g, widths, spool, pages, out);
    doc.end();
    await written;
    return { rows };
  } catch (err) {
    doc.destroy(err as Error);
    await written.catch(() => undefined);
    throw err;
  } finally {
    await spool.dispose();
  }
}
