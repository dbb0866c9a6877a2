import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import PDFDocument from 'pdfkit';
import type { Column } from './spec';
import { drawFurniture, frameFor, openLogo, type Frame, type PageLogo } from './pdf-furniture';
import { generatedAt, type Stamp } from './stamp';
import { WidthTable, wrapText } from './pdf-wrap';
import { Spool } from './spool';
import { asText, isBlank, linkTarget, isDateOnly, toBoolean, toDate, toNumber } from './values';
import { drainedOrClosed, PROGRESS_EVERY, tablesOf, type ReportInput, type ReportResult } from './writer';

/*
 * DejaVu Sans covers Latin, Greek and Cyrillic (Zoë Ødegård, Łukasz, Ελένη, Дмитрий). It comes
 * from the dejavu-fonts-ttf npm package, so `npm ci` provides it on every machine; pdfkit embeds
 * only the glyphs used.
 */
const FONT_DIR = path.join(path.dirname(require.resolve('dejavu-fonts-ttf/package.json')), 'ttf');
export const FONT_REGULAR = path.join(FONT_DIR, 'DejaVuSans.ttf');
export const FONT_BOLD = path.join(FONT_DIR, 'DejaVuSans-Bold.ttf');

const TITLE_SIZE = 14;
const TITLE_GAP = 10;
const STAMP_SIZE = 8;
const BODY_SIZE = 8;
const HEADER_SIZE = 8;
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
    case 'url':
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
  frame: Frame;
  /** Where the table starts on a page: below the margin and the header band. */
  top: number;
  /** The width of the table. */
  usable: number;
  stamp: Stamp;
  logo?: PageLogo;
  /** Left edge of each column, and its width. */
  xs: number[];
  widths: number[];
  headerHeight: number;
  titleHeight: number;
  /** Lowest y a row may reach before the footer. */
  bottom: number;
  lineHeight: number;
}

/** The widest value a typed column usually shows; text columns share what is left instead. */
const SAMPLES: Record<Exclude<Column['type'], 'string' | 'url'>, string> = {
  integer: '000,000',
  number: '00,000.00',
  currency: '00,000.00',
  date: '0000-00-00 00:00',
  boolean: 'Yes',
};
/** The narrowest a text column gets before every column is scaled down to fit the page. */
const MIN_TEXT_CHARS = 6;

/**
 * Column widths: a given `width` (in Excel's character units) is honoured; typed columns get room
 * for their usual value and their header's longest word; text columns share the rest evenly.
 * If that overflows the page, all shrink in proportion.
 */
function columnWidths(doc: PDFKit.PDFDocument, columns: Column[], usable: number): number[] {
  doc.font('regular').fontSize(BODY_SIZE);
  const digit = doc.widthOfString('0');
  const natural = columns.map((c) => {
    if (c.width !== undefined) return c.width * digit + 2 * PAD;
    if (c.type === 'string' || c.type === 'url') return undefined;
    doc.font('bold').fontSize(HEADER_SIZE);
    const header = Math.max(...c.header.split(/\s+/).map((word) => doc.widthOfString(word)));
    doc.font('regular').fontSize(BODY_SIZE);
    return Math.max(doc.widthOfString(SAMPLES[c.type]), header) + 2 * PAD;
  });
  const fixed = natural.reduce<number>((sum, w) => sum + (w ?? 0), 0);
  const flexible = natural.filter((w) => w === undefined).length;
  const share = flexible ? Math.max((usable - fixed) / flexible, MIN_TEXT_CHARS * digit + 2 * PAD) : 0;
  const widths = natural.map((w) => w ?? share);
  const total = widths.reduce((a, b) => a + b, 0);
  // Spread spare room when nothing is flexible; shrink when the page is too narrow.
  return total === usable ? widths : widths.map((w) => (w / total) * usable);
}

/** A table of the report and what is printed above it: the report's title, or a section's heading. */
interface Section {
  input: ReportInput;
  heading: string;
  /** Whether the generated-at line follows the heading (the first section only). */
  stamped: boolean;
}

function geometry(doc: PDFKit.PDFDocument, { input, heading, stamped }: Section, frame: Frame, furniture: { stamp: Stamp; logo?: PageLogo }): Geometry {
  const { width: pageWidth, height: pageHeight } = doc.page;
  const usable = pageWidth - frame.left - frame.right;
  const widths = columnWidths(doc, input.columns, usable);
  const xs = widths.map((_, i) => frame.left + widths.slice(0, i).reduce((a, b) => a + b, 0));
  doc.font('bold').fontSize(HEADER_SIZE);
  const headerHeight = Math.max(...input.columns.map((c, i) => doc.heightOfString(c.header, { width: widths[i] - 2 * PAD }))) + 2 * PAD;
  doc.fontSize(TITLE_SIZE);
  let titleHeight = doc.heightOfString(heading, { width: usable }) + TITLE_GAP;
  if (stamped) titleHeight += doc.font('regular').fontSize(STAMP_SIZE).currentLineHeight(true);
  doc.font('regular').fontSize(BODY_SIZE);
  const bottom = pageHeight - frame.bottom - FOOTER_SPACE;
  return {
    pageWidth,
    pageHeight,
    frame,
    top: frame.top + frame.band,
    usable,
    ...furniture,
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

/** One row as laid out: its height, then each cell's lines joined by "\n". */
type LaidOutRow = [number, ...string[]];

/**
 * Pass 1: formats, wraps and measures every row, spooling the result to disk and counting the
 * pages, so the drawing pass can print "Page n of m" without pdfkit's bufferPages (which keeps
 * every page in memory). Cells are wrapped here (pdf-wrap.ts) rather than by pdfkit, so both
 * passes agree on every line and the drawing pass only places single lines.
 */
async function layOut(input: ReportInput, g: Geometry, widths: WidthTable, spool: Spool<LaidOutRow>): Promise<{ pages: number; rows: number }> {
  let y = g.top + g.titleHeight + g.headerHeight;
  let pages = 1;
  let rows = 0;
  let onPage = 0;
  const rooms = g.widths.map((w) => w - 2 * PAD);
  // A cell never gets more lines than fit under the header on a page of its own.
  const maxLines = Math.max(1, Math.floor((g.bottom - g.top - g.headerHeight - 2 * PAD) / g.lineHeight));
  for await (const row of input.rows) {
    let lines = 1;
    const cells = input.columns.map((c, i) => {
      const wrapped = wrapText(displayText(c, row[c.key]), rooms[i], widths, maxLines);
      lines = Math.max(lines, wrapped.length);
      return wrapped.join('\n');
    });
    let height = lines * g.lineHeight + 2 * PAD;
    if (!fits(g, y, height) && onPage > 0) {
      pages++;
      y = g.top + g.headerHeight;
      onPage = 0;
    }
    // A row taller than the room left on a page of its own is clipped to that room.
    if (!fits(g, y, height)) height = Math.floor((g.bottom - y - 2 * PAD) / g.lineHeight) * g.lineHeight + 2 * PAD;
    y += height;
    onPage++;
    rows++;
    await spool.write([height, ...cells]);
  }
  return { pages, rows };
}

function drawHeader(doc: PDFKit.PDFDocument, input: ReportInput, g: Geometry, y: number): number {
  doc.rect(g.frame.left, y, g.usable, g.headerHeight).fill(HEADER_FILL);
  doc.fillColor('black').font('bold').fontSize(HEADER_SIZE);
  input.columns.forEach((c, i) => {
    doc.text(c.header, g.xs[i] + PAD, y + PAD, { width: g.widths[i] - 2 * PAD, align: rightAligned(c) ? 'right' : 'left' });
  });
  doc.font('regular').fontSize(BODY_SIZE);
  return y + g.headerHeight;
}

function drawFooter(doc: PDFKit.PDFDocument, input: ReportInput, g: Geometry, page: number, pages: number): void {
  drawFurniture(doc, g.frame, input.options ?? {}, g.logo, { page, pages, date: g.stamp.date, title: input.title });
  doc.font('regular').fontSize(BODY_SIZE);
}

/** Pass 2: draws the spooled rows, breaking pages exactly where pass 1 counted them. */
async function draw(
  doc: PDFKit.PDFDocument,
  { input, heading, stamped }: Section,
  g: Geometry,
  widths: WidthTable,
  spool: Spool<LaidOutRow>,
  at: { page: number; pages: number; rows: number },
  out: Writable,
): Promise<void> {
  const { columns, onProgress } = input;
  const { pages } = at;
  const right = columns.map(rightAligned);
  const linked = columns.map((c) => c.type === 'url');
  const { left } = g.frame;
  let page = at.page;
  doc.font('bold').fontSize(TITLE_SIZE).text(heading, left, g.top, { width: g.usable });
  if (stamped) doc.font('regular').fontSize(STAMP_SIZE).text(g.stamp.line, left, doc.y, { width: g.usable });
  let y = drawHeader(doc, input, g, g.top + g.titleHeight);
  let done = at.rows;
  for await (const [height, ...cells] of spool.read()) {
    if (!fits(g, y, height)) {
      drawFooter(doc, input, g, page, pages);
      // pdfkit writes a page out when the next begins; wait here if the reader is behind.
      if (out.writableNeedDrain) await drainedOrClosed(out);
      doc.addPage();
      forgetWordLayouts(doc);
      page++;
      y = drawHeader(doc, input, g, g.top);
    }
    const room = Math.round((height - 2 * PAD) / g.lineHeight);
    for (let i = 0; i < cells.length; i++) {
      if (!cells[i]) continue;
      // A url cell's box links to it; its lines, joined, are the address (URLs have no spaces to lose).
      const target = linked[i] ? linkTarget(cells[i].replace(/\n/g, '')) : undefined;
      if (target) doc.link(g.xs[i], y, g.widths[i], height, target);
      const lines = cells[i].split('\n');
      for (let k = 0; k < lines.length && k < room; k++) {
        // Lines that a clipped row cannot show end the cell with an ellipsis.
        const line = k === room - 1 && lines.length > room ? `${lines[k]}…` : lines[k];
        const x = right[i] ? g.xs[i] + g.widths[i] - PAD - widths.measure(line) : g.xs[i] + PAD;
        doc.text(line, x, y + PAD + k * g.lineHeight, { lineBreak: false });
      }
    }
    y += height;
    doc.moveTo(left, y).lineTo(left + g.usable, y).lineWidth(0.5).strokeColor(RULE_COLOR).stroke();
    done++;
    if (done % PROGRESS_EVERY === 0) onProgress?.(done);
  }
  drawFooter(doc, input, g, page, pages);
  onProgress?.(done);
  at.page = page;
  at.rows = done;
}

/**
 * A PDF table: the title and the generated-at line, then one row per record with wrapping cells,
 * the header repeated at the top of every page, the footer ("Page n of m" unless
 * options.footer) at the foot of each, an optional header band (logo, options.header), A4 or
 * Letter, portrait or landscape. With `sheets`, one section per table, each from a new page.
 * Rows are read once; memory stays flat however many there are (see layOut).
 */
export async function writePdf(input: ReportInput, out: Writable): Promise<ReportResult> {
  const frame = frameFor(input.options ?? {}, input.logo !== undefined);
  const doc = new PDFDocument({
    size: frame.size,
    layout: frame.layout,
    // Margins are applied here, by hand, so pdfkit never starts a page of its own.
    margin: 0,
    info: { Title: input.title, Creator: 'stowage', ...(input.options?.author ? { Author: input.options.author } : {}) },
    displayTitle: true,
  });
  doc.registerFont('regular', FONT_REGULAR);
  doc.registerFont('bold', FONT_BOLD);
  const tables = tablesOf(input);
  const sections = tables.map(
    (t, i): Section => ({
      input: { ...input, columns: t.columns, rows: t.rows },
      // Several tables: each under its name, the first under the report's title too.
      heading: t.name === undefined ? input.title : i === 0 ? `${input.title}\n${t.name}` : t.name,
      stamped: i === 0,
    }),
  );
  const spools: Spool<LaidOutRow>[] = [];
  const written = pipeline(doc, out);
  try {
    const widths = new WidthTable(doc);
    const furniture = { stamp: generatedAt(input.now ?? new Date(), input.options?.timeZone), logo: input.logo && openLogo(doc, input.logo) };
    // Every section is laid out before any is drawn, so "Page n of m" counts them all.
    const laid: { g: Geometry; pages: number; rows: number }[] = [];
    for (const section of sections) {
      const spool = await Spool.create<LaidOutRow>(input.tempDir);
      spools.push(spool);
      const g = geometry(doc, section, frame, furniture);
      laid.push({ g, ...(await layOut(section.input, g, widths, spool)) });
      await spool.finish();
    }
    const at = { page: 1, pages: laid.reduce((sum, l) => sum + l.pages, 0), rows: 0 };
    for (const [i, section] of sections.entries()) {
      // Each section starts on a page of its own.
      if (i > 0) {
        if (out.writableNeedDrain) await drainedOrClosed(out);
        doc.addPage();
        forgetWordLayouts(doc);
        at.page++;
      }
      await draw(doc, section, laid[i].g, widths, spools[i], at, out);
    }
    doc.end();
    await written;
    return { rows: at.rows };
  } catch (err) {
    doc.destroy(err as Error);
    await written.catch(() => undefined);
    throw err;
  } finally {
    for (const spool of spools) await spool.dispose();
  }
}
