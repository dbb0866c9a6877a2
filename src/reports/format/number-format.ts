/**
 * Excel number format codes rendered to text the way Excel shows them, so a PDF (or any text
 * output) reads like the same report's xlsx. The xlsx keeps the code itself as a numFmt; this is
 * only for formats that draw text. Covered: General; digit placeholders 0 and # with grouping (,),
 * decimals and thousands scaling (trailing commas); percent; literal text (quoted, backslashed,
 * `$ - + / ( ) : space` and any other non-code character such as € or £); currency tags
 * `[$€-407]`; colours ([Red]...); up to three sections (positive;negative;zero); and dates and
 * times (y, m, d, h, m, s, AM/PM, fractional seconds). Anything else (conditions such as [>100],
 * elapsed [h], fractions ?/?, scientific E+, text @) is not supported: compileFormat answers
 * undefined, and the caller refuses it rather than print something Excel would not.
 */

export interface Formatted {
  text: string;
  /** A colour asked by the section ([Red]...), lower case; absent for the default. */
  color?: string;
}

export type Formatter = (value: number | Date) => Formatted;

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const COLORS = new Set(['black', 'blue', 'cyan', 'green', 'magenta', 'red', 'white', 'yellow']);
const EXCEL_EPOCH_MS = Date.UTC(1899, 11, 30);

type Token =
  | { kind: 'literal'; text: string }
  | { kind: 'number'; pattern: string }
  | { kind: 'date'; code: string };

interface Section {
  tokens: Token[];
  color?: string;
  percent: number;
  isDate: boolean;
  /** The General format: no code to follow. */
  general: boolean;
}

/** Splits at `;` outside quotes, brackets and after backslashes. */
function splitSections(code: string): string[] | undefined {
  const sections: string[] = [];
  let current = '';
  for (let i = 0; i < code.length; i++) {
    const c = code[i];
    if (c === '"') {
      const end = code.indexOf('"', i + 1);
      if (end < 0) return undefined;
      current += code.slice(i, end + 1);
      i = end;
    } else if (c === '\\') {
      current += code.slice(i, i + 2);
      i++;
    } else if (c === '[') {
      const end = code.indexOf(']', i);
      if (end < 0) return undefined;
      current += code.slice(i, end + 1);
      i = end;
    } else if (c === ';') {
      sections.push(current);
      current = '';
    } else current += c;
  }
  sections.push(current);
  return sections;
}

const DATE_CODE = /^(yyyy|yy|mmmmm|mmmm|mmm|mm|m|dddd|ddd|dd|d|hh|h|ss|s|am\/pm|a\/p)/i;
const NUMBER_CHARS = /[0#?,.]/;

function parseSection(text: string): Section | undefined {
  const tokens: Token[] = [];
  let color: string | undefined;
  let percent = 0;
  let hasNumber = false;
  let hasDate = false;
  const literal = (t: string) => {
    const last = tokens[tokens.length - 1];
    if (last?.kind === 'literal') last.text += t;
    else tokens.push({ kind: 'literal', text: t });
  };
  if (/^\s*general\s*$/i.test(text)) return { tokens: [], percent: 0, isDate: false, general: true };
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    const rest = text.slice(i);
    if (c === '"') {
      const end = text.indexOf('"', i + 1);
      literal(text.slice(i + 1, end));
      i = end + 1;
    } else if (c === '\\') {
      literal(text[i + 1] ?? '');
      i += 2;
    } else if (c === '_') {
      literal(' '); // room the width of the next character: a space is what text shows
      i += 2;
    } else if (c === '*') {
      i += 2; // repeat-to-fill: nothing to fill in text
    } else if (c === '[') {
      const end = text.indexOf(']', i);
      const inner = text.slice(i + 1, end);
      if (COLORS.has(inner.toLowerCase())) color = inner.toLowerCase();
      else if (/^color\d{1,2}$/i.test(inner)) color = inner.toLowerCase();
      else if (inner.startsWith('$')) literal(inner.slice(1).replace(/-.*$/, ''));
      else return undefined; // conditions, elapsed time, locales we don't know
      i = end + 1;
    } else if (c === '%') {
      percent++;
      literal('%');
      i++;
    } else if (/[0#?]/.test(c) || (c === '.' && /^\.[0#?]/.test(rest)) || (c === ',' && hasNumber)) {
      if (hasDate) {
        // "ss.00": fractions of a second
        if (c === '.' && /^\.0+/.test(rest)) {
          const m = /^\.0+/.exec(rest)![0];
          tokens.push({ kind: 'date', code: m });
          i += m.length;
          continue;
        }
        return undefined;
      }
      if (c === '?' || hasNumber) return undefined; // fractions, or digits in two places
      let j = i;
      while (j < text.length && NUMBER_CHARS.test(text[j])) j++;
      tokens.push({ kind: 'number', pattern: text.slice(i, j) });
      if (/\?/.test(text.slice(i, j))) return undefined;
      hasNumber = true;
      i = j;
    } else if (DATE_CODE.test(rest) && !hasNumber) {
      const code = DATE_CODE.exec(rest)![0];
      tokens.push({ kind: 'date', code: code.toLowerCase() });
      hasDate = true;
      i += code.length;
    } else if (/[@eE]/.test(c) || /[a-zA-Z]/.test(c)) {
      return undefined; // text placeholder, scientific, or a letter Excel would refuse unquoted
    } else {
      literal(c);
      i++;
    }
  }
  return { tokens, color, percent, isDate: hasDate, general: false };
}

/** `value` rounded half away from zero to `places` decimals, as Excel does (from 15 significant digits). */
function fixed(value: number, places: number): string {
  const abs = Math.abs(Number(value.toPrecision(15)));
  if (abs >= 1e15) {
    // Excel keeps 15 significant digits and pads with zeros (toFixed would switch to 1e+21).
    const [m, e] = abs.toExponential(14).split('e');
    return m.replace('.', '') + '0'.repeat(Number(e) - 14) + (places ? `.${'0'.repeat(places)}` : '');
  }
  const [mantissa, exp = '0'] = String(abs).split('e');
  const rounded = Math.round(Number(`${mantissa}e${Number(exp) + places}`));
  return Number(`${rounded}e-${places}`).toFixed(places);
}

function group(digits: string): string {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** Renders a number pattern such as `#,##0.00` for a non-negative value. */
function numberText(pattern: string, value: number): string {
  let scaled = value;
  let body = pattern;
  while (body.endsWith(',')) {
    scaled /= 1000;
    body = body.slice(0, -1);
  }
  const dot = body.indexOf('.');
  const intPart = dot < 0 ? body : body.slice(0, dot);
  const fracPart = dot < 0 ? '' : body.slice(dot + 1);
  const grouping = intPart.includes(',');
  const minInt = (intPart.match(/0/g) ?? []).length;
  const maxFrac = fracPart.length;
  const minFrac = (fracPart.match(/0/g) ?? []).length;
  let [whole, frac = ''] = fixed(scaled, maxFrac).split('.');
  frac = frac.replace(/0+$/, '');
  if (frac.length < minFrac) frac = frac.padEnd(minFrac, '0');
  if (whole === '0' && minInt === 0) whole = '';
  whole = whole.padStart(minInt, '0');
  if (grouping) whole = group(whole);
  return dot < 0 ? whole : `${whole}.${frac}`;
}

/** Excel's General: integers as they are, others to 10 significant digits, no grouping. */
function generalText(value: number): string {
  if (Number.isInteger(value) && Math.abs(value) < 1e11) return String(value);
  const abs = Math.abs(value);
  if (abs !== 0 && (abs >= 1e11 || abs < 1e-9)) {
    const [m, e] = value.toExponential(5).split('e');
    const exp = Number(e);
    return `${m.replace(/\.?0+$/, '')}E${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  return String(Number(value.toPrecision(10)));
}

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

function dateText(tokens: Token[], date: Date): string {
  const hasSeconds = tokens.some((t) => t.kind === 'date' && /^\.0/.test(t.code));
  // Excel rounds to the second (or to the fraction shown), then shows each field.
  const decimals = hasSeconds ? Math.min(3, (tokens.find((t) => t.kind === 'date' && /^\.0/.test(t.code)) as { code: string }).code.length - 1) : 0;
  const unit = 1000 / 10 ** decimals;
  const d = new Date(Math.round(date.getTime() / unit) * unit);
  const twelve = tokens.some((t) => t.kind === 'date' && (t.code === 'am/pm' || t.code === 'a/p'));
  const dateTokens = tokens.map((t, i) => ({ t, i })).filter(({ t }) => t.kind === 'date');
  let out = '';
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t.kind !== 'date') {
      out += t.kind === 'literal' ? t.text : '';
      continue;
    }
    const k = dateTokens.findIndex((x) => x.i === i);
    const prev = dateTokens[k - 1]?.t as { code: string } | undefined;
    const next = dateTokens[k + 1]?.t as { code: string } | undefined;
    const hour = d.getUTCHours();
    switch (t.code) {
      case 'yyyy':
        out += String(d.getUTCFullYear());
        break;
      case 'yy':
        out += pad2(d.getUTCFullYear() % 100);
        break;
      case 'm':
      case 'mm': {
        // After an hour or before seconds, m is minutes.
        const minutes = (prev && /^h/.test(prev.code)) || (next && /^s/.test(next.code));
        const n = minutes ? d.getUTCMinutes() : d.getUTCMonth() + 1;
        out += t.code === 'mm' ? pad2(n) : String(n);
        break;
      }
      case 'mmm':
        out += MONTHS[d.getUTCMonth()].slice(0, 3);
        break;
      case 'mmmm':
        out += MONTHS[d.getUTCMonth()];
        break;
      case 'mmmmm':
        out += MONTHS[d.getUTCMonth()][0];
        break;
      case 'd':
        out += String(d.getUTCDate());
        break;
      case 'dd':
        out += pad2(d.getUTCDate());
        break;
      case 'ddd':
        out += DAYS[d.getUTCDay()].slice(0, 3);
        break;
      case 'dddd':
        out += DAYS[d.getUTCDay()];
        break;
      case 'h':
      case 'hh': {
        const h = twelve ? hour % 12 || 12 : hour;
        out += t.code === 'hh' ? pad2(h) : String(h);
        break;
      }
      case 's':
        out += String(d.getUTCSeconds());
        break;
      case 'ss':
        out += pad2(d.getUTCSeconds());
        break;
      case 'am/pm':
        out += hour < 12 ? 'AM' : 'PM';
        break;
      case 'a/p':
        out += hour < 12 ? 'A' : 'P';
        break;
      default: {
        const ms = String(d.getUTCMilliseconds()).padStart(3, '0');
        out += `.${ms.slice(0, t.code.length - 1)}`;
      }
    }
  }
  return out;
}

function render(section: Section, value: number, withSign: boolean): string {
  if (section.general) return generalText(withSign ? value : Math.abs(value));
  const scaled = Math.abs(value) * 100 ** section.percent;
  let out = '';
  let number = false;
  for (const t of section.tokens) {
    if (t.kind === 'literal') out += t.text;
    else if (t.kind === 'number') {
      out += numberText(t.pattern, scaled);
      number = true;
    }
  }
  // A negative shown by the first section alone gets a minus, unless it rounds to zero.
  if (withSign && value < 0 && number && /[1-9]/.test(out)) out = `-${out}`;
  return out;
}

/** Parses an Excel number format code once; undefined for what this module does not cover. */
export function compileFormat(code: string): Formatter | undefined {
  const texts = splitSections(code);
  if (!texts || texts.length > 4) return undefined;
  const sections: Section[] = [];
  for (const text of texts.slice(0, 3)) {
    const s = parseSection(text);
    if (!s) return undefined;
    sections.push(s);
  }
  if (texts.length === 4 && texts[3] !== '@' && texts[3] !== '') return undefined;
  const [positive, negative, zero] = sections;
  return (input) => {
    if (input instanceof Date) {
      const section = sections.find((s) => s.isDate) ?? positive;
      if (!section.isDate) return format(section, (input.getTime() - EXCEL_EPOCH_MS) / 86_400_000);
      return { text: dateText(section.tokens, input), ...(section.color ? { color: section.color } : {}) };
    }
    if (positive.isDate) return { text: dateText(positive.tokens, new Date(EXCEL_EPOCH_MS + input * 86_400_000)) };
    if (input < 0 && negative) return format(negative, input, false);
    if (input === 0 && zero) return format(zero, input, false);
    return format(positive, input);
  };
}

function format(section: Section, value: number, withSign = true): Formatted {
  const text = render(section, value, withSign);
  return section.color ? { text, color: section.color } : { text };
}

/** Whether `code` shows dates or times (its first section does). */
export function isDateFormat(code: string): boolean {
  const first = splitSections(code)?.[0];
  return first !== undefined && parseSection(first)?.isDate === true;
}
