import { FAMILIES, face, loadFont, type Weight } from './catalog';
import { primaryFamily, visualLine } from './runs';

export interface TextStyle {
  weight: Weight;
  size: number;
}

/** Emboldening for a face that has no bold: its outline stroked, this fraction of the size wide. */
const SYNTHETIC_BOLD = 0.035;

/**
 * The fonts of one document. A font is registered with pdfkit (and so embedded, as a subset of the
 * glyphs drawn) only when a run of text is drawn in it: a Latin-only report embeds DejaVu alone.
 */
export class FontSet {
  private readonly registered = new Set<string>();

  /** Registers the base family under the names pdf.ts selects: 'regular' and 'bold'. */
  constructor(private readonly doc: PDFKit.PDFDocument) {
    this.register(face(FAMILIES[0], 'regular'));
    this.register(face(FAMILIES[0], 'bold'));
  }

  private register(f: { name: string; file: string }): void {
    if (this.registered.has(f.name)) return;
    this.doc.registerFont(f.name, loadFont(f.file).bytes);
    this.registered.add(f.name);
  }

  /**
   * The advance of one character in the font that draws it, for pdf-wrap's WidthTable. Read from
   * the font file, so measuring registers (embeds) nothing.
   */
  charWidth(style: TextStyle): (char: string) => number {
    return (char) => {
      const codePoint = char.codePointAt(0) as number;
      const { font } = loadFont(face(FAMILIES[primaryFamily(codePoint, char)], style.weight).file);
      return (font.glyphForCodePoint(codePoint).advanceWidth * style.size) / font.unitsPerEm;
    };
  }

  private select(family: number, style: TextStyle): { synthetic: boolean } {
    const f = face(FAMILIES[family], style.weight);
    this.register(f);
    this.doc.font(f.name).fontSize(style.size);
    return { synthetic: f.synthetic };
  }

  /**
   * Draws one line with its top at `y`, from `x` in a box `room` wide: left-aligned, right-aligned,
   * or (`auto`) right-aligned when the line reads right to left. `plainWidth` measures a line
   * drawn in one run of the base font, as the wrapping did.
   */
  draw(line: string, x: number, y: number, room: number, align: 'left' | 'right' | 'auto', style: TextStyle, plainWidth: (text: string) => number): void {
    const { runs, rtl } = visualLine(line);
    const right = align === 'right' || (align === 'auto' && rtl);
    if (runs.length === 1 && runs[0].family === 0 && runs[0].actual === undefined) {
      const { text } = runs[0];
      this.doc.font(style.weight).fontSize(style.size);
      this.doc.text(text, right ? x + room - plainWidth(text) : x, y, { lineBreak: false });
      return;
    }
    const baseline = y + (loadFont(face(FAMILIES[0], style.weight).file).ascender * style.size) / 1000;
    const widths = runs.map((run) => {
      this.select(run.family, style);
      return this.doc.widthOfString(run.text);
    });
    let at = right ? x + room - widths.reduce((a, b) => a + b, 0) : x;
    runs.forEach((run, i) => {
      const { synthetic } = this.select(run.family, style);
      if (run.actual !== undefined) this.doc.markContent('Span', { actual: run.actual });
      if (synthetic) {
        this.doc.save().lineWidth(style.size * SYNTHETIC_BOLD).strokeColor('black');
        this.doc.text(run.text, at, baseline, { lineBreak: false, baseline: 'alphabetic', fill: true, stroke: true });
        this.doc.restore();
      } else {
        this.doc.text(run.text, at, baseline, { lineBreak: false, baseline: 'alphabetic' });
      }
      if (run.actual !== undefined) this.doc.endMarkedContent();
      at += widths[i];
    });
    this.doc.font(style.weight).fontSize(style.size);
  }
}
