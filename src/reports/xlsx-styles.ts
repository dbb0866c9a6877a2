import { columnCodes } from './format';
import type { Column } from './spec';
import { escapeXml } from './xml';

/** Style indexes (into cellXfs) that the cells of one column use. */
export interface ColumnStyle {
  body: number;
  /** For date columns: a value with a time of day; other columns use `body`. */
  bodyWithTime: number;
  total: number;
}

export interface Styles {
  header: number;
  totalLabel: number;
  columns: ColumnStyle[];
  xml: string;
}

// Built-in number formats (ECMA-376 18.8.30) need no <numFmt>; custom ones start at 164.
const GENERAL = 0;
const BUILT_IN: Record<string, number> = { General: 0, '0': 1, '0.00': 2, '#,##0': 3, '#,##0.00': 4, '0%': 9, '0.00%': 10 };

/**
 * `code` with a second section that shows negatives in red (a section's number is shown without
 * its sign, hence the "-"). A code that already has sections says how negatives look itself.
 */
export function redNegatives(code: string): string {
  return code.includes(';') ? code : `${code};[Red]-${code}`;
}

type Role = 'body' | 'header' | 'total' | 'link';

/**
 * styles.xml for a report: a bold, shaded, underlined header; bold totals with a rule above; each
 * column's number format. Built once from the columns before any row is written, so every cell
 * refers to a style by index and the sheet XML stays small.
 */
export function buildStyles(columns: Column[], options: { redNegatives?: boolean } = {}): Styles {
  const customFormats = new Map<string, number>();
  const formatId = (code: string): number => {
    let id = BUILT_IN[code] ?? customFormats.get(code);
    if (id === undefined) {
      id = 164 + customFormats.size;
      customFormats.set(code, id);
    }
    return id;
  };
  const xfs: string[] = [];
  const xfIndex = new Map<string, number>();
  const xf = (numFmtId: number, role: Role): number => {
    const key = `${numFmtId}/${role}`;
    let index = xfIndex.get(key);
    if (index === undefined) {
      const font = role === 'body' ? 0 : role === 'link' ? 2 : 1;
      const fill = role === 'header' ? 2 : 0;
      const border = role === 'header' ? 1 : role === 'total' ? 2 : 0;
      const align = role === 'header' ? '<alignment vertical="center"/>' : '';
      index = xfs.length;
      xfs.push(
        `<xf numFmtId="${numFmtId}" fontId="${font}" fillId="${fill}" borderId="${border}" xfId="0"` +
          (numFmtId ? ' applyNumberFormat="1"' : '') +
          (font ? ' applyFont="1"' : '') +
          (fill ? ' applyFill="1"' : '') +
          (border ? ' applyBorder="1"' : '') +
          (align ? ` applyAlignment="1">${align}</xf>` : '/>'),
      );
      xfIndex.set(key, index);
    }
    return index;
  };

  xf(GENERAL, 'body'); // index 0: the default every unstyled cell gets
  const header = xf(GENERAL, 'header');
  const totalLabel = xf(GENERAL, 'total');
  // The same codes the pdf renders as text (src/reports/format), so both show a value alike.
  const styles = columns.map((c): ColumnStyle => {
    if (c.type === 'url') return { body: xf(GENERAL, 'link'), bodyWithTime: 0, total: totalLabel };
    const codes = columnCodes(c);
    if (!codes) return { body: 0, bodyWithTime: 0, total: totalLabel };
    const code = options.redNegatives && c.type !== 'date' ? redNegatives(codes.body) : codes.body;
    const body = xf(formatId(code), 'body');
    const total = c.type === 'date' ? totalLabel : xf(formatId(code), 'total');
    return { body, bodyWithTime: c.type === 'date' ? xf(formatId(codes.withTime), 'body') : body, total };
  });

  const numFmts = [...customFormats].map(([code, id]) => `<numFmt numFmtId="${id}" formatCode="${escapeXml(code)}"/>`);
  const xml =
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' +
    '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">' +
    (numFmts.length ? `<numFmts count="${numFmts.length}">${numFmts.join('')}</numFmts>` : '') +
    '<fonts count="3">' +
    '<font><sz val="11"/><name val="Calibri"/><family val="2"/></font>' +
    '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font>' +
    '<font><u/><sz val="11"/><color rgb="FF0563C1"/><name val="Calibri"/><family val="2"/></font>' +
    '</fonts>' +
    '<fills count="3"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill>' +
    '<fill><patternFill patternType="solid"><fgColor rgb="FFD9E1F2"/><bgColor indexed="64"/></patternFill></fill></fills>' +
    '<borders count="3">' +
    '<border><left/><right/><top/><bottom/><diagonal/></border>' +
    '<border><left/><right/><top/><bottom style="thin"><color auto="1"/></bottom><diagonal/></border>' +
    '<border><left/><right/><top style="thin"><color auto="1"/></top><bottom/><diagonal/></border>' +
    '</borders>' +
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>' +
    `<cellXfs count="${xfs.length}">${xfs.join('')}</cellXfs>` +
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>' +
    '</styleSheet>';
  return { header, totalLabel, columns: styles, xml };
}
