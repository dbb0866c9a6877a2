/**
 * Text width in the body font as the sum of its characters' advances, each measured once through
 * pdfkit. It ignores kerning, which only narrows text, so a line judged to fit does fit; and it
 * spares pdfkit's per-word shaping (fontkit's GSUB/GPOS lookups), which dominated the layout pass.
 * Must be created while the body font and size are selected.
 */
export class WidthTable {
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

/** Splits a word wider than `room` into pieces that fit, at least one character each. */
function breakWord(word: string, room: number, widths: WidthTable, out: string[]): string {
  let rest = word;
  while (rest.length > 1 && widths.measure(rest) > room) {
    let end = 1;
    while (end < rest.length && widths.measure(rest.slice(0, end + 1)) <= room) end++;
    out.push(rest.slice(0, end));
    rest = rest.slice(end);
  }
  return rest;
}

/**
 * Greedy word wrap of `text` into lines no wider than `room`, breaking at spaces and line breaks,
 * and inside words only when one word alone is too wide. Stops after `maxLines` + 1 lines: the
 * caller only needs to know that there are more than it can show.
 */
export function wrapText(text: string, room: number, widths: WidthTable, maxLines: number): string[] {
  if (!text.includes('\n') && widths.measure(text) <= room) return [text];
  const lines: string[] = [];
  const space = widths.measure(' ');
  for (const paragraph of text.split('\n')) {
    let line = '';
    let lineWidth = 0;
    for (const word of paragraph.split(' ')) {
      const w = widths.measure(word);
      if (line && lineWidth + space + w <= room) {
        line += ` ${word}`;
        lineWidth += space + w;
        continue;
      }
      if (line) lines.push(line);
      line = w > room ? breakWord(word, room, widths, lines) : word;
      lineWidth = widths.measure(line);
      if (lines.length > maxLines) return lines;
    }
    lines.push(line);
    if (lines.length > maxLines) return lines;
  }
  return lines;
}
