import fs from 'node:fs';
import path from 'node:path';
import * as fontkit from 'fontkit';

/*
 * The fonts a PDF report draws with. DejaVu Sans (the dejavu-fonts-ttf package) covers Latin,
 * Greek and Cyrillic; the Noto fallbacks in `fonts/` at the package root (OFL, see fonts/OFL.txt)
 * cover what it lacks. They are files in the repo rather than npm packages because the packages
 * that ship TTFs ship every weight (Noto Sans SC alone is 57 MB packed) and the ones that ship
 * single weights split CJK into a hundred unicode-range slices.
 */

export type Weight = 'regular' | 'bold';

export interface FontFace {
  /** The name it is registered under in a document. */
  name: string;
  file: string;
  /** True for a regular face standing in for a bold one (CJK ships one weight): drawn emboldened. */
  synthetic: boolean;
}

export interface Family {
  id: string;
  regular: string;
  /** Absent: bold text is drawn emboldened from the regular face. */
  bold?: string;
  /** Letters of these scripts try this family before the ones listed above it. */
  prefer?: RegExp;
  /** Shaping reorders or joins its glyphs, so text extraction needs the characters spelled out. */
  shaped?: boolean;
}

const DEJAVU = path.join(path.dirname(require.resolve('dejavu-fonts-ttf/package.json')), 'ttf');

/** `fonts/` beside package.json: walked up to, since code runs from src/ (tests) and dist/src. */
function fontsDir(from = __dirname): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return path.join(dir, 'fonts');
    if (path.dirname(dir) === dir) throw new Error(`No package.json above ${from}: cannot find the report fonts.`);
  }
}
const NOTO = fontsDir();

/** In the order they are tried: the first that has a character's glyph draws it. */
export const FAMILIES: readonly Family[] = [
  { id: 'dejavu', regular: path.join(DEJAVU, 'DejaVuSans.ttf'), bold: path.join(DEJAVU, 'DejaVuSans-Bold.ttf') },
  // DejaVu has Arabic and Hebrew letters too, but Noto's are the ones made for reading them.
  { id: 'arabic', regular: path.join(NOTO, 'NotoSansArabic-Regular.ttf'), bold: path.join(NOTO, 'NotoSansArabic-Bold.ttf'), prefer: /\p{Script=Arabic}/u, shaped: true },
  { id: 'hebrew', regular: path.join(NOTO, 'NotoSansHebrew-Regular.ttf'), bold: path.join(NOTO, 'NotoSansHebrew-Bold.ttf'), prefer: /\p{Script=Hebrew}/u },
  { id: 'devanagari', regular: path.join(NOTO, 'NotoSansDevanagari-Regular.ttf'), bold: path.join(NOTO, 'NotoSansDevanagari-Bold.ttf'), shaped: true },
  // Chinese and Japanese (Han, kana), then Korean (Hangul).
  { id: 'sc', regular: path.join(NOTO, 'NotoSansSC-Regular.ttf') },
  { id: 'kr', regular: path.join(NOTO, 'NotoSansKR-Regular.ttf') },
];

export function face(family: Family, weight: Weight): FontFace {
  const file = weight === 'bold' ? (family.bold ?? family.regular) : family.regular;
  // The base family goes by the weight alone: pdf.ts selects it as 'regular' and 'bold'.
  const name = family === FAMILIES[0] ? weight : `${family.id}-${weight}`;
  return { name, file, synthetic: weight === 'bold' && !family.bold };
}

/** A font file read and parsed once per process (or report thread), the first time it is needed. */
export interface LoadedFont {
  bytes: Buffer;
  font: fontkit.Font;
  /** Ascent in pdfkit's 1000-unit scale, to line up baselines across fonts. */
  ascender: number;
}

const loaded = new Map<string, LoadedFont>();

export function loadFont(file: string): LoadedFont {
  let entry = loaded.get(file);
  if (!entry) {
    const bytes = fs.readFileSync(file);
    const font = fontkit.create(bytes) as fontkit.Font;
    entry = { bytes, font, ascender: (font.ascent * 1000) / font.unitsPerEm };
    loaded.set(file, entry);
  }
  return entry;
}
