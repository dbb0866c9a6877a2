import type { ReportOptions } from './spec';
import { escapeXml } from './xml';

/*
 * The parts of a worksheet around its cells: print setup (fit to one page wide, the header row
 * repeated on every printed page, orientation, paper, page header and footer) and hyperlinks.
 */

const XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n';
const HYPERLINK_REL = 'http://schemas.openxmlformats.org/officeDocument/2006/relationships/hyperlink';
/** Excel keeps at most this many hyperlinks in a sheet; later links stay as plain text. */
export const MAX_HYPERLINKS = 65_530;
/** ECMA-376 paperSize codes. */
const PAPER = { A4: 9, Letter: 1 } as const;

/**
 * First in <worksheet>: lets pageSetup's fitToWidth apply; with outline levels (groupBy), subtotal
 * rows sit below their group, so its fold button does too (CT_SheetPr: outlinePr before pageSetUpPr).
 */
export function sheetPrXml(outlined: boolean): string {
  return `<sheetPr>${outlined ? '<outlinePr summaryBelow="1"/>' : ''}<pageSetUpPr fitToPage="1"/></sheetPr>`;
}

/**
 * Centred header/footer text in Excel's codes: page numbers are Excel's own (&P, &N), the title
 * and the generation date are written in; a literal & is doubled.
 */
function headerFooterText(text: string, fill: { title: string; date: string }): string {
  const codes: Record<string, string> = { page: '&P', pages: '&N' };
  const filled = (p: string) => (p === 'title' || p === 'date' ? fill[p].replace(/&/g, '&&') : codes[p]);
  const parts = text.split(/(\{(?:page|pages|date|title)\})/);
  return '&C' + parts.map((p) => (/^\{\w+\}$/.test(p) ? filled(p.slice(1, -1)) : p.replace(/&/g, '&&'))).join('');
}

/** pageMargins, pageSetup and headerFooter, in the order CT_Worksheet wants them (after hyperlinks). */
export function printSetupXml(options: ReportOptions, fill: { title: string; date: string }): string {
  const orientation = options.landscape ? 'landscape' : 'portrait';
  const paper = PAPER[options.pageSize ?? 'A4'];
  let xml =
    '<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/>' +
    `<pageSetup paperSize="${paper}" orientation="${orientation}" fitToWidth="1" fitToHeight="0"/>`;
  if (options.header || options.footer) {
    xml += '<headerFooter>';
    if (options.header) xml += `<oddHeader>${escapeXml(headerFooterText(options.header, fill))}</oddHeader>`;
    if (options.footer) xml += `<oddFooter>${escapeXml(headerFooterText(options.footer, fill))}</oddFooter>`;
    xml += '</headerFooter>';
  }
  return xml;
}

/** `_xlnm.Print_Titles`: row 1 (the header) printed at the top of every page of sheet `index`. */
export function printTitlesName(quotedSheet: string, index: number): string {
  return `<definedName name="_xlnm.Print_Titles" localSheetId="${index}">${escapeXml(quotedSheet)}!$1:$1</definedName>`;
}

/**
 * A sheet's hyperlinks: each is a cell reference in <hyperlinks> pointing at an external
 * relationship in the sheet's .rels part. Kept in memory, so capped at MAX_HYPERLINKS.
 */
export class Hyperlinks {
  private readonly links: [ref: string, target: string][] = [];

  /** False when the sheet is full of links: the cell then stays plain text. */
  add(ref: string, target: string): boolean {
    if (this.links.length >= MAX_HYPERLINKS) return false;
    this.links.push([ref, target]);
    return true;
  }

  get count(): number {
    return this.links.length;
  }

  xml(): string {
    if (!this.links.length) return '';
    return `<hyperlinks>${this.links.map(([ref], i) => `<hyperlink ref="${ref}" r:id="rId${i + 1}"/>`).join('')}</hyperlinks>`;
  }

  relsXml(): string {
    return (
      XML_DECL +
      '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">' +
      this.links.map(([, target], i) => `<Relationship Id="rId${i + 1}" Type="${HYPERLINK_REL}" Target="${escapeXml(target)}" TargetMode="External"/>`).join('') +
      '</Relationships>'
    );
  }
}
