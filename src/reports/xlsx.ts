import type { Writable } from 'node:stream';
import { Unprocessable } from '../errors';
// Types only from spec.ts: the writer does not need zod (the service loads it anyway, but a
// standalone write of 100k rows spent a tenth of its time loading it).
import type { Column } from './spec';
import { asText, isBlank, linkTarget, MAX_CELL_TEXT, isDateOnly, toBoolean, toDate } from './values';
import { sampleRows, totalSample, xlsxWidth } from './format/widths';
import { groupColumns, Groups, summedValue, type GroupEvent } from './groups';
import { escapeXml } from './xml';
import { buildStyles, type ColumnStyle } from './xlsx-styles';
import { generatedAt } from './stamp';
import { Hyperlinks, printSetupXml, printTitlesName, sheetPrXml } from './xlsx-sheet-setup';
import { zipStream, type ZipEntry } from './zip';
import { CHUNK_BYTES, PROGRESS_EVERY, tablesOf, writeChunks, type ReportInput, type ReportResult } from './writer';

/*
 * A purpose-built streaming xlsx writer: the sheet XML is generated row by row straight into a
 * streaming zip (zip.ts), with inline strings (no shared-string table to hold in memory), a small
 * styles.xml fixed by the columns, and cell references only where a blank cell leaves a gap.
 *
 * Why not exceljs: measured with `npm run bench` (bench/reports.ts, 2 cores, 10 columns), its
 * streaming WorkbookWriter took 17 s CPU and 563 MB peak RSS for 1M rows with default options,
 * and tuning it (useSharedStrings false, useStyles false, zlib level 1) changed neither much
 * (16.7 s, 578 MB): it builds an object per cell and buffers in its own XML and zip layers. This
 * writer did 1M rows in 9.4 s CPU at 116 MB, and 100k rows in about half exceljs's time.
 */

const MAIN_NS = 'http://schemas.openxmlformats.org/spreadsheetml/2006/main';
const REL_NS = 'http://schemas.openxmlformats.org/officeDocument/2006/relationships';
const XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n';
/** Rows in an Excel sheet; header and totals rows count too. */
const EXCEL_MAX_ROWS = 1_048_576;
/** Excel counts days from 1899-12-30 (1900 was wrongly a leap year); serial 61 is 1900-03-01. */
const EXCEL_EPOCH_MS = Date.UTC(1899, 11, 30);
const FIRST_SAFE_SERIAL = 61;

export function columnLetter(index: number): string {
  let n = index + 1;
  let name = '';
  while (n > 0) {
    const rem = (n - 1) % 26;
    name = String.fromCharCode(65 + rem) + name;
    n = Math.floor((n - 1) / 26);
  }
  return name;
}

/** Text that needs more than copying: edge whitespace to preserve, or characters to escape. */
const NEEDS_CARE = /^\s|\s$|[<>&"\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/;

function inlineString(ref: string, text: string, style = 0): string {
  const s = style ? ` s="${style}"` : '';
  if (text.length <= MAX_CELL_TEXT && !NEEDS_CARE.test(text)) {
    return `<c${ref}${s} t="inlineStr"><is><t>${text}</t></is></c>`;
  }
  const t = text.length > MAX_CELL_TEXT ? text.slice(0, MAX_CELL_TEXT) : text;
  const space = /^\s|\s$/.test(t) ? ' xml:space="preserve"' : '';
  return `<c${ref}${s} t="inlineStr"><is><t${space}>${escapeXml(t)}</t></is></c>`;
}

function numberCell(ref: string, n: number, style: number): string {
  return style ? `<c${ref} s="${style}"><v>${n}</v></c>` : `<c${ref}><v>${n}</v></c>`;
}

/**
 * `ref` is the cell's ` r="B7"` attribute, or '' for a cell right after the previous one in its
 * row: the reference is optional there (ECMA-376 18.3.1.4) and leaving it out saves a tenth of
 * the sheet's bytes and of the time to write and compress them.
 */
type CellWriter = (value: unknown, ref: string) => string;

/** One function per column that turns a value into its `<c>` element; sums go to `totals`. */
function cellWriter(column: Column, style: ColumnStyle, totals: number[], index: number, links: Hyperlinks): CellWriter {
  switch (column.type) {
    case 'number':
    case 'currency':
    case 'integer': {
      return (value, ref) => {
        const n = summedValue(column, value);
        if (n === undefined) return inlineString(ref, asText(value));
        totals[index] += n;
        return numberCell(ref, n, style.body);
      };
    }
    case 'boolean':
      return (value, ref) => {
        const b = toBoolean(value);
        return b === undefined ? inlineString(ref, asText(value)) : `<c${ref} t="b"><v>${b ? 1 : 0}</v></c>`;
      };
    case 'date':
      return (value, ref) => {
        const d = toDate(value);
        const serial = d ? (d.getTime() - EXCEL_EPOCH_MS) / 86_400_000 : 0;
        // Excel cannot show dates before March 1900 as dates: those stay ISO text.
        if (!d || serial < FIRST_SAFE_SERIAL) return inlineString(ref, asText(value));
        return numberCell(ref, serial, isDateOnly(d) ? style.body : style.bodyWithTime);
      };
    case 'string':
      return (value, ref) => inlineString(ref, asText(value));
    case 'url':
      // The cell shows the address as text (never a formula); only http, https and mailto link.
      return (value, ref) => {
        const target = linkTarget(value);
        if (target && links.add(ref.slice(4, -1), target)) return inlineString(ref, asText(value), style.body);
        return inlineString(ref, asText(value));
      };
  }
}

/** From the title: Excel's sheet-name rules (31 characters, no : \ / ? * [ ], no edge apostrophes). */
export function sheetNameFrom(title: string): string {
  const name = title.replace(/[:\\/?*[\]]/g, ' ').replace(/^'+/, '').slice(0, 31).replace(/'+$/, '').trim();
  return name || 'Report';
}

interface SheetState {
  /** The sheet's place in the workbook (0: the first, selected one). */
  index: number;
  rows: number;
  lastRow: number;
  links: Hyperlinks;
}

type SheetStyles = Pick<ReturnType<typeof buildStyles>, 'header' | 'totalLabel' | 'columns'>;

/** A totals or subtotal row: a label, then SUBTOTAL(9, ...) over `from`..`to` with the sums cached. */
function totalRow(
  columns: Column[],
  styles: SheetStyles,
  letters: string[],
  r: number,
  range: [number, number],
  sums: number[],
  label: { column: number; text: string },
  groups: Groups,
  outlineLevel: number,
): string {
  let xml = `<row r="${r}"${outlineLevel ? ` outlineLevel="${outlineLevel}"` : ''}>`;
  columns.forEach((_, i) => {
    const ref = ` r="${letters[i]}${r}"`;
    if (groups.isSummed(i)) {
      // SUBTOTAL(9) skips the subtotals inside its range, so groups nest and the grand total is
      // right; the cached <v> lets readers that do not calculate (viewers, data_only) see it.
      const f = `SUBTOTAL(9,${letters[i]}${range[0]}:${letters[i]}${range[1]})`;
      xml += `<c${ref} s="${styles.columns[i].total}"><f>${f}</f><v>${sums[i]}</v></c>`;
    } else if (i === label.column) {
      xml += inlineString(ref, label.text, styles.totalLabel);
    }
  });
  return xml + '</row>';
}

async function* sheetXml(input: ReportInput, styles: SheetStyles, state: SheetState): AsyncGenerator<Buffer> {
  const { columns, options = {}, onProgress } = input;
  const letters = columns.map((_, i) => columnLetter(i));
  const totals = columns.map(() => 0);
  const writers = columns.map((c, i) => cellWriter(c, styles.columns[i], totals, i, state.links));
  // A hyperlink names its cell, so url cells always carry their reference.
  const linked = columns.map((c) => c.type === 'url');
  const keys = columns.map((c) => c.key);
  const groups = new Groups(columns, groupColumns(columns, options.groupBy));
  const levels = groups.levels;
  // Groups always end with a grand total.
  const totalsRow = options.totalsRow || levels > 0;
  const maxDataRows = EXCEL_MAX_ROWS - 1 - (totalsRow ? 1 : 0);
  const { sample, rows } = await sampleRows(input.rows);

  const cols = columns
    .map((c, i) => {
      const extra = totalsRow && groups.isSummed(i) ? [totalSample(c, sample, (v) => summedValue(c, v))] : [];
      return `<col min="${i + 1}" max="${i + 1}" width="${xlsxWidth(c, sample, extra)}" customWidth="1"/>`;
    })
    .join('');
  let xml =
    XML_DECL +
    `<worksheet xmlns="${MAIN_NS}" xmlns:r="${REL_NS}">` +
    sheetPrXml(levels > 0) +
    `<sheetViews><sheetView${state.index === 0 ? ' tabSelected="1"' : ''} workbookViewId="0">` +
    '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>' +
    '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView></sheetViews>' +
    `<sheetFormatPr defaultRowHeight="15"${levels ? ` outlineLevelRow="${levels}"` : ''}/>` +
    `<cols>${cols}</cols><sheetData>` +
    '<row r="1">' +
    columns.map((c, i) => inlineString(` r="${letters[i]}1"`, c.header, styles.header)).join('') +
    '</row>';

  let rowNumber = 1;
  const starts: number[] = [];
  const onGroup = (e: GroupEvent) => {
    if (e.kind === 'open') {
      starts[e.level] = rowNumber + 1;
      return;
    }
    rowNumber++;
    xml += totalRow(columns, styles, letters, rowNumber, [starts[e.level], rowNumber - 1], e.sums, { column: e.column, text: `${e.label} total` }, groups, e.level - 1);
  };
  const rowOpen = levels ? ` outlineLevel="${levels}">` : '>';
  for await (const row of rows) {
    if (levels) for (const e of groups.before(row)) onGroup(e);
    // Room for this row, the subtotal rows every open group will still need, and the total.
    if (rowNumber + 1 + levels + (totalsRow ? 1 : 0) > EXCEL_MAX_ROWS) {
      const most = levels ? 'rows (with their subtotals)' : `${maxDataRows} rows`;
      throw new Unprocessable(`An xlsx sheet holds at most ${most} here; use csv for more.`, 'report_too_large');
    }
    rowNumber++;
    const r = String(rowNumber);
    xml += `<row r="${r}"${rowOpen}`;
    let gap = false;
    for (let i = 0; i < keys.length; i++) {
      const value = row[keys[i]];
      if (isBlank(value)) gap = true;
      else xml += writers[i](value, gap || linked[i] ? ` r="${letters[i]}${r}"` : '');
    }
    xml += '</row>';
    if (levels) groups.add(row);
    state.rows++;
    if (state.rows % PROGRESS_EVERY === 0) onProgress?.(state.rows);
    if (xml.length >= CHUNK_BYTES) {
      yield Buffer.from(xml, 'utf8');
      xml = '';
    }
  }
  for (const e of groups.end()) onGroup(e);
  state.lastRow = rowNumber;

  if (totalsRow && state.rows > 0) {
    xml += totalRow(columns, styles, letters, rowNumber + 1, [2, rowNumber], totals, { column: firstLabelColumn(groups, columns), text: 'Total' }, groups, 0);
  }
  const filter = `A1:${letters[letters.length - 1]}${rowNumber}`;
  xml += `</sheetData><autoFilter ref="${filter}"/>${state.links.xml()}${printSetupXml(options, { title: input.title, date: generatedAt(input.now ?? new Date(), options.timeZone).date })}</worksheet>`;
  yield Buffer.from(xml, 'utf8');
  onProgress?.(state.rows);
}

/** Where "Total" goes: the first column without a sum (the first column if all have one, then it has no sum shown). */
function firstLabelColumn(groups: Groups, columns: Column[]): number {
  const i = columns.findIndex((_, k) => !groups.isSummed(k));
  return i < 0 ? 0 : i;
}

function workbookXml(sheets: { name: string; filterRef: string }[]): string {
  const names = sheets.map(({ name, filterRef }, i) => {
    const quoted = `'${name.replace(/'/g, "''")}'`;
    const absolute = filterRef.replace(/([A-Z]+)(\d+)/g, '$$$1$$$2');
    // Excel and LibreOffice keep the autofilter's range in this hidden name as well.
    return `<definedName name="_xlnm._FilterDatabase" localSheetId="${i}" hidden="1">${escapeXml(quoted)}!${absolute}</definedName>${printTitlesName(quoted, i)}`;
  });
  return (
    XML_DECL +
    `<workbook xmlns="${MAIN_NS}" xmlns:r="${REL_NS}">` +
    '<bookViews><workbookView/></bookViews>' +
    `<sheets>${sheets.map(({ name }, i) => `<sheet name="${escapeXml(name)}" sheetId="${i + 1}" r:id="rId${i + 1}"/>`).join('')}</sheets>` +
    `<definedNames>${names.join('')}</definedNames>` +
    '<calcPr calcId="191029" fullCalcOnLoad="1"/></workbook>'
  );
}

const contentTypes = (sheets: number) =>
  XML_DECL +
  '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">' +
  '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>' +
  '<Default Extension="xml" ContentType="application/xml"/>' +
  '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>' +
  Array.from({ length: sheets }, (_, i) => `<Override PartName="/xl/worksheets/sheet${i + 1}.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>`).join('') +
  '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>' +
  '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>' +
  '</Types>';

const ROOT_RELS =
  XML_DECL +
  '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">' +
  '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>' +
  '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/>' +
  '</Relationships>';

/** Sheets are rId1..rIdN (as workbook.xml refers to them), then styles. */
const workbookRels = (sheets: number) =>
  XML_DECL +
  '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">' +
  Array.from({ length: sheets }, (_, i) => `<Relationship Id="rId${i + 1}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet${i + 1}.xml"/>`).join('') +
  `<Relationship Id="rId${sheets + 1}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>` +
  '</Relationships>';

function coreXml(title: string, author: string, created: Date): string {
  const when = created.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return (
    XML_DECL +
    '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" ' +
    'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" ' +
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">' +
    `<dc:title>${escapeXml(title)}</dc:title><dc:creator>${escapeXml(author)}</dc:creator>` +
    `<cp:lastModifiedBy>${escapeXml(author)}</cp:lastModifiedBy>` +
    `<dcterms:created xsi:type="dcterms:W3CDTF">${when}</dcterms:created>` +
    '</cp:coreProperties>'
  );
}

function* parts(input: ReportInput, states: SheetState[]): Generator<ZipEntry> {
  const tables = tablesOf(input);
  // One styles.xml for every sheet: built from all their columns, then handed out sheet by sheet.
  const styles = buildStyles(tables.flatMap((t) => t.columns), { redNegatives: input.options?.redNegatives });
  const names = input.sheets ? input.sheets.map((s) => s.name) : [input.options?.sheetName ?? sheetNameFrom(input.title)];
  const utf8 = (text: string) => Buffer.from(text, 'utf8');
  yield { name: '[Content_Types].xml', data: utf8(contentTypes(tables.length)) };
  yield { name: '_rels/.rels', data: utf8(ROOT_RELS) };
  yield { name: 'docProps/core.xml', data: utf8(coreXml(input.title, input.options?.author ?? 'stowage', new Date())) };
  yield { name: 'xl/_rels/workbook.xml.rels', data: utf8(workbookRels(tables.length)) };
  yield { name: 'xl/styles.xml', data: utf8(styles.xml) };
  let first = 0;
  let done = 0;
  for (const [index, table] of tables.entries()) {
    const state: SheetState = { index, rows: 0, lastRow: 1, links: new Hyperlinks() };
    states.push(state);
    const sheetStyles = { ...styles, columns: styles.columns.slice(first, first + table.columns.length) };
    first += table.columns.length;
    const before = done;
    const sheetInput = { ...input, columns: table.columns, rows: table.rows, onProgress: (n: number) => input.onProgress?.(before + n) };
    yield { name: `xl/worksheets/sheet${index + 1}.xml`, data: sheetXml(sheetInput, sheetStyles, state) };
    done += state.rows;
    if (state.links.count) yield { name: `xl/worksheets/_rels/sheet${index + 1}.xml.rels`, data: utf8(state.links.relsXml()) };
  }
  // Pulled only once the sheets have streamed, so each filter's range knows its last row.
  const sheets = tables.map((t, i) => ({ name: names[i], filterRef: `A1:${columnLetter(t.columns.length - 1)}${states[i].lastRow}` }));
  yield { name: 'xl/workbook.xml', data: utf8(workbookXml(sheets)) };
}

/**
 * Writes one sheet (or one per table of `sheets`): a styled, frozen header row with an autofilter;
 * typed cells (numbers, integers, currency with its format, dates as Excel dates, booleans, links);
 * column widths from the first rows' content; an optional totals row, and with options.groupBy a
 * subtotal row after each group (SUBTOTAL formulas with cached values, outline levels so groups
 * fold) and a grand total. The title becomes the document title and,
 * unless options.sheetName is given, the sheet's name. Memory stays flat whatever the row count.
 */
export async function writeXlsx(input: ReportInput, out: Writable): Promise<ReportResult> {
  const states: SheetState[] = [];
  await writeChunks(zipStream(parts(input, states)), out);
  return { rows: states.reduce((sum, s) => sum + s.rows, 0) };
}
