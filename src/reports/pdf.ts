import { pipeline } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import PDFDocument from 'pdfkit';
import { FAMILIES } from './fonts/catalog';
import { FontSet, type TextStyle } from './fonts/font-set';
import type { Row } from './spec';
import { cellText, isNumeric, type CellText } from './format';
import { sampleRows, sampleTexts, totalSample } from './format/widths';
import { groupColumns, Groups, summedValue } from './groups';
import { drawFurniture, frameFor, FURNITURE_SIZE, openLogo, type Frame, type PageLogo } from './pdf-furniture';
import { generatedAt, type Stamp } from './stamp';
import { WidthTable, wrapText } from './pdf-wrap';
import { Spool } from './spool';
import { linkTarget } from './values';
import { drainedOrClosed, PROGRESS_EVERY, tablesOf, type ReportInput, type ReportResult } from './writer';

/*
 * DejaVu Sans draws Latin, Greek and Cyrillic (Zoë Ødegård, Łukasz, Ελένη, Дмитрий); Noto fonts
 * draw the scripts it lacks, chosen per run of text (fonts/). pdfkit embeds only the glyphs used.
 */
export const FONT_REGULAR = FAMILIES[0].regular;
export const FONT_BOLD = FAMILIES[0].bold as string;

const TITLE_SIZE = 14;
const TITLE_GAP = 10;
const STAMP_SIZE = 8;
const BODY_SIZE = 8;
const HEADER_SIZE = 8;
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
  /** Each column's header, wrapped. */
  headers: string[][];
  headerLineHeight: number;
  /** The title or section heading, wrapped. */
  title: string[];
  titleLineHeight: number;
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
function columnWidths(text: Texts, input: ReportInput, sample: Row[], groups: Groups, totals: boolean, usable: number): number[] {
  const { columns } = input;
  const { body } = text;
  const digit = body.measure('0');
  const labelColumn = Math.max(0, columns.findIndex((_, i) => !groups.isSummed(i)));
  const given = columns.map((c) => c.width !== undefined);
  const natural = columns.map((c, i) => {
    if (c.width !== undefined) return c.width * digit + 2 * H_PAD;
    // Each text in the fonts that draw it (fonts/), so a CJK header is measured as drawn.
    let width = Math.max(...c.header.split(/\s+/).map((word) => text.header.measure(word)));
    if (totals && groups.isSummed(i)) width = Math.max(width, text.bold.measure(totalSample(c, sample, (v) => summedValue(c, v))));
    // The grand total's label, in bold, fits its column rather than wrapping.
    if (totals && i === labelColumn) width = Math.max(width, text.bold.measure('Total'));
    for (const shown of sampleTexts(c, sample)) for (const line of shown.split('\n')) width = Math.max(width, body.measure(line));
    return Math.min(width + 2 * H_PAD, usable * MAX_COLUMN_SHARE);
  });
  const shared = columns.map((c, i) => (c.type === 'string' || c.type === 'url') && !given[i]);
  const sum = (ws: number[]) => ws.reduce((a, b) => a + b, 0);
  let widths = natural;
  const over = sum(widths) - usable;
  if (over > 0) {
    const floor = MIN_TEXT_CHARS * digit + 2 * H_PAD;
    const give = widths.reduce((room, w, i) => room + (shared[i] ? Math.max(0, w - floor) : 0), 0);
    if (give > 0) widths = widths.map((w, i) => (shared[i] ? w - (Math.max(0, w - floor) / give) * Math.min(over, give) : w));
  } else if (over < 0) {
    const growing = shared.some(Boolean) ? shared : columns.map(() => true);
    const base = sum(widths.filter((_, i) => growing[i]));
    widths = widths.map((w, i) => (growing[i] ? w - (over * w) / base : w));
  }
  const total = sum(widths);
  return total <= usable + 0.01 ? widths : widths.map((w) => (w / total) * usable);
}

/** A table of the report and what is printed above it: the report's title, or a section's heading. */
interface Section {
  input: ReportInput;
  heading: string;
  /** Whether the generated-at line follows the heading (the first section only). */
  stamped: boolean;
}

const HEADER_STYLE: TextStyle = { weight: 'bold', size: HEADER_SIZE };
const TITLE_STYLE: TextStyle = { weight: 'bold', size: TITLE_SIZE };
const STAMP_STYLE: TextStyle = { weight: 'regular', size: STAMP_SIZE };
const BODY_STYLE: TextStyle = { weight: 'regular', size: BODY_SIZE };
/** Headings, subtotals and totals. */
const BOLD_STYLE: TextStyle = { weight: 'bold', size: BODY_SIZE };
const FURNITURE_STYLE: TextStyle = { weight: 'regular', size: FURNITURE_SIZE };

/** The fonts of a document, and the widths that wrap text in each style. */
interface Texts {
  fonts: FontSet;
  body: WidthTable;
  bold: WidthTable;
  header: WidthTable;
  title: WidthTable;
  stamp: WidthTable;
  furniture: WidthTable;
}

function texts(doc: PDFKit.PDFDocument): Texts {
  const fonts = new FontSet(doc);
  const table = (style: TextStyle) => new WidthTable(fonts.charWidth(style));
  return {
    fonts,
    body: table(BODY_STYLE),
    bold: table(BOLD_STYLE),
    header: table(HEADER_STYLE),
    title: table(TITLE_STYLE),
    stamp: table(STAMP_STYLE),
    furniture: table(FURNITURE_STYLE),
  };
}

function geometry(
  doc: PDFKit.PDFDocument,
  text: Texts,
  { input, heading, stamped }: Section,
  frame: Frame,
  furniture: { stamp: Stamp; logo?: PageLogo },
  sample: Row[],
  groups: Groups,
  totals: boolean,
): Geometry {
  const { width: pageWidth, height: pageHeight } = doc.page;
  const usable = pageWidth - frame.left - frame.right;
  const widths = columnWidths(text, input, sample, groups, totals, usable);
  const xs = widths.map((_, i) => frame.left + widths.slice(0, i).reduce((a, b) => a + b, 0));
  // Header and title wrap like cells, measured in the fonts that draw them.
  const headerLineHeight = doc.font('bold').fontSize(HEADER_SIZE).currentLineHeight(true);
  const headers = input.columns.map((c, i) => wrapText(c.header, widths[i] - 2 * H_PAD, text.header, Infinity));
  const headerHeight = Math.max(...headers.map((lines) => lines.length)) * headerLineHeight + 2 * PAD;
  const titleLineHeight = doc.fontSize(TITLE_SIZE).currentLineHeight(true);
  const title = wrapText(heading, usable, text.title, Infinity);
  let titleHeight = title.length * titleLineHeight + TITLE_GAP;
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
  text: Texts,
  groups: Groups,
  totalsRow: boolean,
  spool: Spool<LaidOutRow>,
): Promise<{ pages: number; rows: number }> {
  const { columns } = input;
  let y = g.top + g.titleHeight + g.headerHeight;
  let pages = 1;
  let count = 0;
  let onPage = 0;
  const rooms = g.widths.map((w) => w - 2 * H_PAD);
  const tableWidth = g.widths.reduce((a, b) => a + b, 0);
  const texts: CellText[] = columns.map(cellText);
  const sums = columns.map(() => 0);
  const rowHeight = g.lineHeight + 2 * PAD;
  // A cell never gets more lines than fit under the header on a page of its own.
  const maxLines = Math.max(1, Math.floor((g.bottom - g.top - g.headerHeight - 2 * PAD) / g.lineHeight));

  const place = async (kind: Kind, cells: string[], colors: 0 | string[], keepWith = 0) => {
    let lines = 1;
    // Headings and totals are bold: wrapped in the bold widths they are drawn with.
    const widths = kind === Kind.Data ? text.body : text.bold;
    const wrapped = cells.map((cellText, i) => {
      const room = kind === Kind.Heading ? tableWidth - 2 * H_PAD - GROUP_INDENT * i : rooms[i];
      const cell = cellText ? wrapText(cellText, room, widths, maxLines) : [''];
      lines = Math.max(lines, cell.length);
      return cell.join('\n');
    });
    let height = lines * g.lineHeight + 2 * PAD;
    let newPage: 0 | 1 = 0;
    if (!fits(g, y, height + keepWith) && onPage > 0) {
      pages++;
      y = g.top + g.headerHeight;
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

function drawHeader(doc: PDFKit.PDFDocument, input: ReportInput, g: Geometry, text: Texts, y: number): number {
  doc.rect(g.frame.left, y, g.usable, g.headerHeight).fill(HEADER_FILL);
  doc.fillColor('black');
  input.columns.forEach((c, i) => {
    g.headers[i].forEach((line, k) => {
      text.fonts.draw(line, g.xs[i] + H_PAD, y + PAD + k * g.headerLineHeight, g.widths[i] - 2 * H_PAD, rightAligned(c) ? 'right' : 'auto', HEADER_STYLE, (t) => text.header.measure(t));
    });
  });
  doc.font('regular').fontSize(BODY_SIZE);
  return y + g.headerHeight;
}

function drawFooter(doc: PDFKit.PDFDocument, input: ReportInput, g: Geometry, text: Texts, page: number, pages: number): void {
  const measure = (t: string) => text.furniture.measure(t);
  // One line, cut with an ellipsis when too long, in whatever fonts its scripts need.
  const write = (line: string, x: number, y: number, room: number, align: 'right' | 'center') => {
    const lines = wrapText(line, room - measure('…'), text.furniture, 1);
    const shown = lines.length > 1 ? `${lines[0]}…` : lines[0];
    const left = align === 'center' ? x + Math.max(0, (room - measure(shown)) / 2) : x;
    text.fonts.draw(shown, left, y, room, align === 'center' ? 'left' : 'right', FURNITURE_STYLE, measure);
  };
  drawFurniture(doc, g.frame, input.options ?? {}, g.logo, { page, pages, date: g.stamp.date, title: input.title }, write);
  doc.font('regular').fontSize(BODY_SIZE);
}

/** Pass 2: draws the spooled rows, breaking pages exactly where pass 1 counted them. */
async function draw(
  doc: PDFKit.PDFDocument,
  { input, stamped }: Section,
  g: Geometry,
  text: Texts,
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
  g.title.forEach((line, k) => text.fonts.draw(line, left, g.top + k * g.titleLineHeight, g.usable, 'auto', TITLE_STYLE, (t) => text.title.measure(t)));
  if (stamped) text.fonts.draw(g.stamp.line, left, g.top + g.title.length * g.titleLineHeight, g.usable, 'left', STAMP_STYLE, (t) => text.stamp.measure(t));
  doc.font('regular').fontSize(BODY_SIZE);
  let y = drawHeader(doc, input, g, text, g.top + g.titleHeight);
  let done = at.rows;
  for await (const [height, kind, newPage, colors, ...cells] of spool.read()) {
    if (newPage) {
      drawFooter(doc, input, g, text, page, pages);
      // pdfkit writes a page out when the next begins; wait here if the reader is behind.
      if (out.writableNeedDrain) await drainedOrClosed(out);
      doc.addPage();
      forgetWordLayouts(doc);
      page++;
      y = drawHeader(doc, input, g, text, g.top);
    }
    const bold = kind !== Kind.Data;
    const style = bold ? BOLD_STYLE : BODY_STYLE;
    const widths = bold ? text.bold : text.body;
    const measure = (t: string) => widths.measure(t);
    if (kind === Kind.Total) doc.moveTo(left, y).lineTo(left + g.usable, y).lineWidth(0.75).strokeColor(TOTAL_RULE_COLOR).stroke();
    const room = Math.round((height - 2 * PAD) / g.lineHeight);
    for (let i = 0; i < cells.length; i++) {
      if (!cells[i]) continue;
      if (colors) doc.fillColor(colors[i] || 'black');
      // A url cell's box links to it; its lines, joined, are the address (URLs have no spaces to lose).
      const target = kind === Kind.Data && linked[i] ? linkTarget(cells[i].replace(/\n/g, '')) : undefined;
      if (target) doc.link(g.xs[i], y, g.widths[i], height, target);
      const lines = cells[i].split('\n');
      for (let k = 0; k < lines.length && k < room; k++) {
        // Lines that a clipped row cannot show end the cell with an ellipsis.
        const line = k === room - 1 && lines.length > room ? `${lines[k]}…` : lines[k];
        const ty = y + PAD + k * g.lineHeight;
        if (kind === Kind.Heading) {
          const indent = H_PAD + GROUP_INDENT * i;
          text.fonts.draw(line, left + indent, ty, g.usable - indent - H_PAD, 'auto', style, measure);
        } else {
          text.fonts.draw(line, g.xs[i] + H_PAD, ty, g.widths[i] - 2 * H_PAD, right[i] ? 'right' : 'auto', style, measure);
        }
      }
    }
    if (colors) doc.fillColor('black');
    y += height;
    doc.moveTo(left, y).lineTo(left + g.usable, y).lineWidth(0.5).strokeColor(RULE_COLOR).stroke();
    if (kind === Kind.Data) {
      done++;
      if (done % PROGRESS_EVERY === 0) onProgress?.(done);
    }
  }
  drawFooter(doc, input, g, text, page, pages);
  onProgress?.(done);
  at.page = page;
  at.rows = done;
}

/**
 * A PDF table: the title and the generated-at line, then one row per record with wrapping cells in
 * columns sized from their content, numbers shown as their format codes ask (src/reports/format),
 * optional group headings, subtotals and totals, the header repeated at the top of every page, the
 * footer ("Page n of m" unless options.footer) at the foot of each, an optional header band (logo,
 * options.header), A4 or Letter, portrait or landscape. With `sheets`, one section per table, each
 * from a new page. Rows are read once; memory stays flat however many there are (see layOut).
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
  const text = texts(doc);
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
    const options = input.options ?? {};
    const furniture = { stamp: generatedAt(input.now ?? new Date(), options.timeZone), logo: input.logo && openLogo(doc, input.logo) };
    // Every section is laid out before any is drawn, so "Page n of m" counts them all.
    const laid: { g: Geometry; pages: number; rows: number }[] = [];
    for (const section of sections) {
      const spool = await Spool.create<LaidOutRow>(input.tempDir);
      spools.push(spool);
      const { columns } = section.input;
      const groups = new Groups(columns, groupColumns(columns, options.groupBy));
      const totalsRow = Boolean(options.totalsRow) || groups.levels > 0;
      const sampled = await sampleRows(section.input.rows);
      const g = geometry(doc, text, section, frame, furniture, sampled.sample, groups, totalsRow);
      laid.push({ g, ...(await layOut(section.input, sampled.rows, g, text, groups, totalsRow, spool)) });
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
      await draw(doc, section, laid[i].g, text, spools[i], at, out);
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
