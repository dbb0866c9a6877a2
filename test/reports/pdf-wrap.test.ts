import PDFDocument from 'pdfkit';
import { FONT_REGULAR } from '../../src/reports/pdf';
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
