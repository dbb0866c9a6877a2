import bidiFactory from 'bidi-js';
import { FAMILIES, face, loadFont } from './catalog';

const bidi = bidiFactory();

/** A piece of a line drawn in one font, in the order it is drawn (left to right). */
export interface Run {
  text: string;
  /** Index into FAMILIES. */
  family: number;
  /**
   * The characters in reading order, when the glyphs drawn don't spell them in order (right to
   * left, joined or reordered by shaping): marked as the run's ActualText so that copying and
   * text extraction (pdftotext) give the text back.
   */
  actual?: string;
}

export interface VisualLine {
  runs: Run[];
  /** The line reads right to left (its first strong character is Arabic, Hebrew...). */
  rtl: boolean;
}

/** Characters that belong to the run they follow: combining marks, joiners, variation selectors. */
const CLINGS = /[\p{M}\u200c\u200d\ufe00-\ufe0f]/u;
const LETTER = /\p{L}/u;
/** Scripts fontkit lays out right to left itself (it reverses their glyphs after shaping). */
const RTL_SCRIPT = /[\p{Script=Arabic}\p{Script=Hebrew}\p{Script=Syriac}\p{Script=Thaana}\p{Script=Nko}\p{Script=Samaritan}\p{Script=Mandaic}]/u;
const FIRST_SCRIPT_LETTER = /[^\p{Script=Common}\p{Script=Inherited}\p{Script=Unknown}]/u;
/** Text DejaVu draws alone, left to right: most reports, kept on the fast path. */
const PLAIN = /^[\u0000-\u024f\u2010-\u2027\u2030-\u205e\u20a0-\u20bf]*$/;

const primary = new Map<number, number>();

const regulars = FAMILIES.map((f) => () => loadFont(face(f, 'regular').file).font);

function covers(family: number, codePoint: number): boolean {
  return regulars[family]().hasGlyphForCodePoint(codePoint);
}

/** The family that draws a character on its own: a preferring family, else the first with its glyph. */
export function primaryFamily(codePoint: number, char: string): number {
  let family = primary.get(codePoint);
  if (family === undefined) {
    const preferred = FAMILIES.findIndex((f) => f.prefer?.test(char) && covers(FAMILIES.indexOf(f), codePoint));
    family = preferred >= 0 ? preferred : FAMILIES.findIndex((_, i) => covers(i, codePoint));
    // A character no font has is drawn in DejaVu's "missing glyph" box, as a reader would expect.
    if (family < 0) family = 0;
    primary.set(codePoint, family);
  }
  return family;
}

/**
 * Spaces, digits and punctuation stay in the font of the run they are in when it has them, so a
 * Chinese or Arabic phrase is one run (Arabic must be, to be joined); letters go to their font.
 */
function familyFor(codePoint: number, char: string, current: number | undefined): number {
  if (current !== undefined && (CLINGS.test(char) || (!LETTER.test(char) && covers(current, codePoint)))) return current;
  return primaryFamily(codePoint, char);
}

interface Piece extends Run {
  level: number;
}

/**
 * A right-to-left piece as the runs pdfkit must receive to draw its glyphs in visual order. fontkit
 * reverses the glyphs of a right-to-left script itself, but pdfkit lays text out word by word (each
 * word cached), so such a piece goes word by word, last word first; anything else is reversed here.
 */
function rtlRuns(text: string, family: number): Run[] {
  const mirrored = [...text].map((c) => bidi.getMirroredCharacter(c) ?? c);
  const first = FIRST_SCRIPT_LETTER.exec(text);
  if (!first || !RTL_SCRIPT.test(first[0])) return [{ text: mirrored.reverse().join(''), family }];
  return mirrored
    .join('')
    .split(/( +)/)
    .filter(Boolean)
    .reverse()
    .map((word) => ({ text: word, family }));
}

/**
 * One line of a cell (already wrapped, in logical order) as runs of one font each, in visual
 * order: the Unicode bidirectional algorithm (bidi-js) resolves each character's level from the
 * line's first strong character, then runs are reordered (rule L2) and right-to-left ones
 * mirrored and reversed.
 */
export function visualLine(line: string): VisualLine {
  if (PLAIN.test(line)) return { runs: [{ text: line, family: 0 }], rtl: false };
  const { levels, paragraphs } = bidi.getEmbeddingLevels(line, 'auto');
  const pieces: Piece[] = [];
  let current: number | undefined;
  let index = 0;
  for (const char of line) {
    const codePoint = char.codePointAt(0) as number;
    const level = levels[index];
    index += char.length;
    const family = familyFor(codePoint, char, current);
    current = family;
    const last = pieces[pieces.length - 1];
    if (last && last.family === family && last.level === level) last.text += char;
    else pieces.push({ text: char, family, level });
  }
  const max = Math.max(...pieces.map((p) => p.level));
  const minOdd = Math.min(...pieces.map((p) => p.level | 1));
  for (let level = max; level >= minOdd; level--) {
    for (let i = 0; i < pieces.length; ) {
      if (pieces[i].level < level) {
        i++;
        continue;
      }
      let end = i;
      while (end < pieces.length && pieces[end].level >= level) end++;
      pieces.splice(i, end - i, ...pieces.slice(i, end).reverse());
      i = end;
    }
  }
  const runs = pieces.flatMap((p): Run[] => {
    if (p.level % 2 === 1) return rtlRuns(p.text, p.family);
    return [FAMILIES[p.family].shaped ? { text: p.text, family: p.family, actual: p.text } : { text: p.text, family: p.family }];
  });
  return { runs, rtl: (paragraphs[0]?.level ?? 0) % 2 === 1 };
}
