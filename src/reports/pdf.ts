import { pipeline } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import PDFDocument from 'pdfkit';
import { FAMILIES } from './fonts/catalog';
import { FontSet, type TextStyle } from './fonts/font-set';
import type { Column } from './spec';
import { WidthTable, wrapText } from './pdf-wrap';
import { Spool } from './spool';
import { asText, isBlank, isDateOnly, toBoolean, toDate, toNumber } from './values';
import { drainedOrClosed, PROGRESS_EVERY, type ReportInput, type ReportResult } from './writer';

/*
 * DejaVu Sans draws Latin, Greek and Cyrillic (Zoë Ødegård, Łukasz, Ελένη, Дмитрий); Noto fonts
 * draw the scripts it lacks, chosen per run of text (fonts/). pdfkit embeds only the glyphs used.
 */
export const FONT_REGULAR = FAMILIES[0].regular;
export const FONT_BOLD = FAMILIES[0].bold as string;

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
  /** Each column's header, wrapped. */
  headers: string[][];
  headerLineHeight: number;
  /** The title, wrapped. */
  title: string[];
  titleLineHeight: number;
  titleHeight: number;
  /** Lowest y a row may reach before the footer. */
  bottom: number;
  lineHeight: number;
}

/** The widest value a typed column usually shows; text columns share what is left instead. */
const SAMPLES: Record<Exclude<Column['type'], 'string'>, string> = {
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
    if (c.type === 'string') return undefined;
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

const HEADER_STYLE: TextStyle = { weight: 'bold', size: HEADER_SIZE };
const TITLE_STYLE: TextStyle = { weight: 'bold', size: TITLE_SIZE };
const BODY_STYLE: TextStyle = { weight: 'regular', size: BODY_SIZE };

function geometry(doc: PDFKit.PDFDocument, input: ReportInput, text: Texts): Geometry {
  const { width: pageWidth, height: pageHeight } = doc.page;
  const usable = pageWidth - 2 * MARGIN;
  const widths = columnWidths(doc, input.columns, usable);
  const xs = widths.map((_, i) => MARGIN + widths.slice(0, i).reduce((a, b) => a + b, 0));
  // Header and title wrap like cells, measured in the fonts that draw them.
  const headerLineHeight = doc.font('bold').fontSize(HEADER_SIZE).currentLineHeight(true);
  const headers = input.columns.map((c, i) => wrapText(c.header, widths[i] - 2 * PAD, text.header, Infinity));
  const headerHeight = Math.max(...headers.map((lines) => lines.length)) * headerLineHeight + 2 * PAD;
  const titleLineHeight = doc.fontSize(TITLE_SIZE).currentLineHeight(true);
  const title = wrapText(input.title, usable, text.title, Infinity);
  const titleHeight = title.length * titleLineHeight + TITLE_GAP;
  doc.font('regular').fontSize(BODY_SIZE);
  const bottom = pageHeight - MARGIN - FOOTER_SPACE;
  return {
    pageWidth,
    pageHeight,
    xs,
    widths,
    headerHeight,
    headers,
    headerLineHeight,
    title,
    titleLineHeight,
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

/** The fonts of a document, and the widths that wrap text in each style. */
interface Texts {
  fonts: FontSet;
  body: WidthTable;
  header: WidthTable;
  title: WidthTable;
}

function texts(doc: PDFKit.PDFDocument): Texts {
  const fonts = new FontSet(doc);
  return {
    fonts,
    body: new WidthTable(fonts.charWidth(BODY_STYLE)),
    header: new WidthTable(fonts.charWidth(HEADER_STYLE)),
    title: new WidthTable(fonts.charWidth(TITLE_STYLE)),
  };
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
  let y = MARGIN + g.titleHeight + g.headerHeight;
  let pages = 1;
  let rows = 0;
  let onPage = 0;
  const rooms = g.widths.map((w) => w - 2 * PAD);
  // A cell never gets more lines than fit under the header on a page of its own.
  const maxLines = Math.max(1, Math.floor((g.bottom - MARGIN - g.headerHeight - 2 * PAD) / g.lineHeight));
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
      y = MARGIN + g.headerHeight;
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

function drawHeader(doc: PDFKit.PDFDocument, input: ReportInput, g: Geometry, text: Texts, y: number): number {
  const width = g.pageWidth - 2 * MARGIN;
  doc.rect(MARGIN, y, width, g.headerHeight).fill(HEADER_FILL);
  doc.fillColor('black');
  input.columns.forEach((c, i) => {
    g.headers[i].forEach((line, k) => {
      text.fonts.draw(line, g.xs[i] + PAD, y + PAD + k * g.headerLineHeight, g.widths[i] - 2 * PAD, rightAligned(c) ? 'right' : 'auto', HEADER_STYLE, (t) => text.header.measure(t));
    });
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
async function draw(doc: PDFKit.PDFDocument, input: ReportInput, g: Geometry, text: Texts, spool: Spool<LaidOutRow>, pages: number, out: Writable): Promise<void> {
  const { columns, onProgress } = input;
  const right = columns.map(rightAligned);
  const measure = (t: string) => text.body.measure(t);
  const width = g.pageWidth - 2 * MARGIN;
  let page = 1;
  g.title.forEach((line, k) => text.fonts.draw(line, MARGIN, MARGIN + k * g.titleLineHeight, width, 'auto', TITLE_STYLE, (t) => text.title.measure(t)));
  doc.font('regular').fontSize(BODY_SIZE);
  let y = drawHeader(doc, input, g, text, MARGIN + g.titleHeight);
  let done = 0;
  for await (const [height, ...cells] of spool.read()) {
    if (!fits(g, y, height)) {
      drawFooter(doc, g, page, pages);
      // pdfkit writes a page out when the next begins; wait here if the reader is behind.
      if (out.writableNeedDrain) await drainedOrClosed(out);
      doc.addPage();
      forgetWordLayouts(doc);
      page++;
      y = drawHeader(doc, input, g, text, MARGIN);
    }
    const room = Math.round((height - 2 * PAD) / g.lineHeight);
    for (let i = 0; i < cells.length; i++) {
      if (!cells[i]) continue;
      const lines = cells[i].split('\n');
      for (let k = 0; k < lines.length && k < room; k++) {
        // Lines that a clipped row cannot show end the cell with an ellipsis.
        const line = k === room - 1 && lines.length > room ? `${lines[k]}…` : lines[k];
        text.fonts.draw(line, g.xs[i] + PAD, y + PAD + k * g.lineHeight, g.widths[i] - 2 * PAD, right[i] ? 'right' : 'auto', BODY_STYLE, measure);
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
  const text = texts(doc);
  const spool = await Spool.create<LaidOutRow>(input.tempDir);
  const written = pipeline(doc, out);
  try {
    const g = geometry(doc, input, text);
    const { pages, rows } = await layOut(input, g, text.body, spool);
    await spool.finish();
    await draw(doc, input, g, text, spool, pages, out);
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
