/**
 * Text width as the sum of its characters' advances, each in the font that draws it
 * (fonts/font-set.ts `charWidth`) and measured once. It ignores kerning, which only narrows text,
 * so a line judged to fit does fit; and it spares pdfkit's per-word shaping (fontkit's GSUB/GPOS
 * lookups), which dominated the layout pass. (Shaped Arabic and Devanagari are measured by their
 * unjoined letters, close to their drawn width.)
 */
export class WidthTable {
  private readonly widths = new Map<number, number>();
  constructor(private readonly charWidth: (char: string) => number) {}

  measure(text: string): number {
    let width = 0;
    for (let i = 0; i < text.length; i++) {
      let code = text.charCodeAt(i);
      // A character outside the BMP is two UTF-16 units, measured as one.
      if (code >= 0xd800 && code < 0xdc00 && i + 1 < text.length) code = text.codePointAt(i++) as number;
      let w = this.widths.get(code);
      if (w === undefined) {
        w = this.charWidth(String.fromCodePoint(code));
        this.widths.set(code, w);
      }
      width += w;
    }
    return width;
  }
}

/** Where a word may be cut: never inside a surrogate pair or before a combining mark. */
function cuttable(text: string, at: number): boolean {
  const code = text.charCodeAt(at);
  return !(code >= 0xdc00 && code < 0xe000) && !/\p{M}/u.test(text[at]);
}

/** Splits a word wider than `room` into pieces that fit, at least one character each. */
function breakWord(word: string, room: number, widths: WidthTable, out: string[]): string {
  let rest = word;
  while (rest.length > 1 && widths.measure(rest) > room) {
    let end = 1;
    while (end < rest.length && !cuttable(rest, end)) end++;
    for (let next = end + 1; next <= rest.length; next++) {
      if (next < rest.length && !cuttable(rest, next)) continue;
      if (widths.measure(rest.slice(0, next)) > room) break;
      end = next;
    }
    if (end >= rest.length) break;
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
