import PDFDocument from 'pdfkit';
import { FONT_REGULAR } from '../../src/reports/pdf';
import { FontSet } from '../../src/reports/fonts/font-set';
import { WidthTable, wrapText } from '../../src/reports/pdf-wrap';

describe('wrapText', () => {
  const doc = new PDFDocument({ margin: 0 });
  doc.registerFont('regular', FONT_REGULAR);
  doc.font('regular').fontSize(8);
  const widths = new WidthTable((char) => doc.widthOfString(char));

  it('measures like pdfkit, never narrower', () => {
    for (const text of ['Zoë Ødegård', 'Дмитрий 1,234.50', 'AVAVA To', 'Ελένη']) {
      expect(widths.measure(text)).toBeGreaterThanOrEqual(doc.widthOfString(text) - 1e-9);
      expect(widths.measure(text)).toBeLessThan(doc.widthOfString(text) * 1.1);
    }
  });

  it('keeps text that fits on one line, wraps at spaces and line breaks, and breaks only over-long words', () => {
    const room = widths.measure('0123456789');
    expect(wrapText('short', room, widths, 10)).toEqual(['short']);
    expect(wrapText('aaa bbb ccc ddd', widths.measure('aaa bbb'), widths, 10)).toEqual(['aaa bbb', 'ccc ddd']);
    expect(wrapText('one\ntwo', room, widths, 10)).toEqual(['one', 'two']);
    expect(wrapText('abcdefghijklmnopqrstuvwxyz', room, widths, 10).join('')).toBe('abcdefghijklmnopqrstuvwxyz');
    for (const line of wrapText('abcdefghijklmnopqrstuvwxyz and more words here', room, widths, 10)) {
      expect(widths.measure(line)).toBeLessThanOrEqual(room);
    }
  });

  it('stops once it knows there are more lines than fit', () => {
    expect(wrapText(Array.from({ length: 1000 }, () => 'word').join(' '), widths.measure('word'), widths, 5)).toHaveLength(6);
  });
});

describe('wrapText in mixed scripts', () => {
  const doc = new PDFDocument({ margin: 0 });
  const fonts = new FontSet(doc);
  const charWidth = fonts.charWidth({ weight: 'regular', size: 8 });
  const widths = new WidthTable(charWidth);

  it('measures each character in the font that draws it', () => {
    // A CJK ideograph is one em wide in Noto Sans SC; DejaVu's missing-glyph box would be narrower.
    expect(widths.measure('王小明')).toBeCloseTo(24, 5);
    expect(widths.measure('Zoë')).toBeCloseTo(doc.font('regular').fontSize(8).widthOfString('Zoë'), 5);
    // Outside the BMP: one character, measured once, not as two halves.
    expect(widths.measure('𠀀𠀀')).toBe(2 * charWidth('𠀀'));
    expect(charWidth('𠀀')).toBeGreaterThan(0);
  });

  it('breaks unspaced CJK text anywhere, never inside a surrogate pair or before a combining mark', () => {
    const room = widths.measure('王小明');
    const lines = wrapText('北京市朝阳区建国门外大街', room, widths, 10);
    expect(lines).toEqual(['北京市', '朝阳区', '建国门', '外大街']);
    for (const line of wrapText('𠀀𠀁𠀂𠀃 नमस्ते', widths.measure('𠀀'), widths, 20)) {
      expect(line).not.toMatch(/^[\udc00-\udfff]|[\ud800-\udbff]$|^\p{M}/u);
    }
  });
});
