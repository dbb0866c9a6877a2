import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import PDFDocument from 'pdfkit';
import type { Column } from './spec';
import { Spool } from './spool';
import { asText, isBlank, isDateOnly, toBoolean, toDate, toNumber } from './values';
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
const RULE_COLOR = '#c8c8c8';
const HEADER_FILL = '#d9e1f2';

const integerFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const numberFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 6 });
const currencyFormat = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });

/** How a value reads in a printed table. Excel number formats do not apply here. */
export function displayText(column: Column, value: unknown): string {
  if (isBlank(value)) return '';
  switch (column.type) {
    case 'integer':
    case 'number':
    case 'currency': {
      const n = toNumber(value);
      if (n === undefined) break;
      return (column.type === 'currency' ? currencyFormat : Number.isInteger(n) ? integerFormat : numberFormat).format(n);
    }
    case 'date': {
      const d = toDate(value);
      if (!d) break;
      const iso = d.toISOString();
      return isDateOnly(d) ? iso.slice(0, 10) : `${iso.slice(0, 10)} ${iso.slice(11, 16)}`;
    }
    case 'boolean': {
      const b = toBoolean(value);
      if (b !== undefined) return b ? 'Yes' : 'No';
      break;
    }
    case 'string':
      break;
  }
  return asText(value);
}

function rightAligned(column: Column): boolean {
  return column.type === 'integer' || column.type === 'number' || column.type === 'currency';
}

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

function defaultWeight(column: Column): number {
  return column.width ?? { string: 24, number: 12, currency: 12, integer: 9, date: 12, boolean: 6 }[column.type];
}

function geometry(doc: PDFKit.PDFDocument, input: ReportInput): Geometry {
  const { width: pageWidth, height: pageHeight } = doc.page;
  const usable = pageWidth - 2 * MARGIN;
  const weights = input.columns.map(defaultWeight);
  const total = weights.reduce((a, b) => a + b, 0);
  const widths = weights.map((w) => (w / total) * usable);
  const xs = widths.map((_, i) => MARGIN + widths.slice(0, i).reduce((a, b) => a + b, 0));
  doc.font('bold').fontSize(HEADER_SIZE);
  const headerHeight = Math.max(...input.columns.map((c, i) => doc.heightOfString(c.header, { width: widths[i] - 2 * PAD }))) + 2 * PAD;
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

/**
 * Text width in the body font as the sum of its characters' advances, each measured once through
 * pdfkit. It ignores kerning, which only ever narrows text, so a line judged to fit does fit, and
 * it spares pdfkit's per-word shaping (fontkit's GSUB/GPOS lookups), which dominated the layout
 * pass.
 */
class WidthTable {
  private readonly widths = new Map<number, number>();
  constructor(private readonly doc: PDFKit.PDFDocument) {}

  measure(text: string): number {
    let width = 0;
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i);
      let w = this.widths.get(code);
      if (w === undefined) {
        w = this.doc.widthOfString(text[i]);
        this.widths.set(code, w);
      }
      width += w;
    }
    return width;
  }
}

/** Both passes break pages with this, so they agree; the slack absorbs rounding in clipped rows. */
function fits(g: Geometry, y: number, height: number): boolean {
  return y + height <= g.bottom + 0.01;
}

/** One row as laid out: its height, then each cell's text. */
type LaidOutRow = [number, ...string[]];

/**
 * Pass 1: formats and measures every row, spooling the results to disk and counting the pages, so
 * the drawing pass can print "Page n of m" without pdfkit's bufferPages (which keeps every page in
 * memory). Text that fits one line is measured by width alone, which is much cheaper than a wrap.
 */
async function layOut(doc: PDFKit.PDFDocument, input: ReportInput, g: Geometry, spool: Spool<LaidOutRow>): Promise<{ pages: number; rows: number }> {
  let y = MARGIN + g.titleHeight + g.headerHeight;
  let pages = 1;
  let rows = 0;
  let onPage = 0;
  const widths = new WidthTable(doc);
  for await (const row of input.rows) {
    let height = g.lineHeight;
    const texts = input.columns.map((c, i) => {
      const text = displayText(c, row[c.key]);
      const room = g.widths[i] - 2 * PAD;
      if (text.includes('\n') || widths.measure(text) > room) {
        height = Math.max(height, doc.heightOfString(text, { width: room }));
      }
      return text;
    });
    height += 2 * PAD;
    if (!fits(g, y, height) && onPage > 0) {
      pages++;
      y = MARGIN + g.headerHeight;
      onPage = 0;
      forgetWordLayouts(doc);
    }
    // A row taller than the room left on a page of its own is clipped to that room.
    height = Math.min(height, g.bottom - y);
    y += height;
    onPage++;
    rows++;
    await spool.write([height, ...texts]);
  }
  return { pages, rows };
}

function drawHeader(doc: PDFKit.PDFDocument, input: ReportInput, g: Geometry, y: number): number {
  const width = g.pageWidth - 2 * MARGIN;
  doc.rect(MARGIN, y, width, g.headerHeight).fill(HEADER_FILL);
  doc.fillColor('black').font('bold').fontSize(HEADER_SIZE);
  input.columns.forEach((c, i) => {
    doc.text(c.header, g.xs[i] + PAD, y + PAD, { width: g.widths[i] - 2 * PAD, align: rightAligned(c) ? 'right' : 'left' });
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

/** Pass 2: draws the spooled rows, breaking pages exactly where pass 1 counted them. */
async function draw(doc: PDFKit.PDFDocument, input: ReportInput, g: Geometry, spool: Spool<LaidOutRow>, pages: number, out: Writable): Promise<void> {
  const { columns, onProgress } = input;
  const right = columns.map(rightAligned);
  const widths = new WidthTable(doc);
  const width = g.pageWidth - 2 * MARGIN;
  let page = 1;
  doc.font('bold').fontSize(TITLE_SIZE).text(input.title, MARGIN, MARGIN, { width });
  let y = drawHeader(doc, input, g, MARGIN + g.titleHeight);
  let done = 0;
  for await (const [height, ...texts] of spool.read()) {
    if (!fits(g, y, height)) {
      drawFooter(doc, g, page, pages);
      // pdfkit writes a page out when the next begins; wait here if the reader is behind.
      if (out.writableNeedDrain) await drainedOrClosed(out);
      doc.addPage();
      forgetWordLayouts(doc);
      page++;
      y = drawHeader(doc, input, g, MARGIN);
    }
    for (let i = 0; i < texts.length; i++) {
      const text = texts[i];
      if (!text) continue;
      const room = g.widths[i] - 2 * PAD;
      const width = text.includes('\n') ? Infinity : widths.measure(text);
      if (width <= room) {
        // One line: place it directly, skipping pdfkit's line wrapper.
        doc.text(text, right[i] ? g.xs[i] + g.widths[i] - PAD - width : g.xs[i] + PAD, y + PAD, { lineBreak: false });
      } else {
        doc.text(text, g.xs[i] + PAD, y + PAD, { width: room, height: height - 2 * PAD, ellipsis: true, align: right[i] ? 'right' : 'left' });
      }
    }
    y += height;
    doc.moveTo(MARGIN, y).lineTo(MARGIN + width, y).lineWidth(0.5).strokeColor(RULE_COLOR).stroke();
    done++;
    if (done % PROGRESS_EVERY === 0) onProgress?.(done);
  }
  drawFooter(doc, g, page, pages);
  onProgress?.(done);
}

/**
 * A PDF table: the title, then one row per record with wrapping cells, the header repeated at the
 * top of every page, "Page n of m" at the foot of each, A4 portrait or landscape. Rows are read
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
  const spool = await Spool.create<LaidOutRow>();
  const written = pipeline(doc, out);
  try {
    const g = geometry(doc, input);
    const { pages, rows } = await layOut(doc, input, g, spool);
    await spool.finish();
    await draw(doc, input, g, spool, pages, out);
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
