/**
 * Turning the loose values of a row (JSON from a request body, strings from a CSV, typed cells
 * from an XLSX) into what a column's type asks for. Every writer uses these, so a value means the
 * same in every format. Each returns undefined when the value does not fit; the writers then show
 * it as text rather than fail a whole report on one odd cell (request bodies are checked strictly
 * in spec.ts before they get here).
 */

/** The most text Excel keeps in one cell. */
export const MAX_CELL_TEXT = 32_767;

const NUMERIC = /^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/;

export function toNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'string' && NUMERIC.test(value)) return Number(value);
  return undefined;
}

export function toInteger(value: unknown): number | undefined {
  const n = toNumber(value);
  return n !== undefined && Number.isSafeInteger(n) ? n : undefined;
}

export function toBoolean(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === 'TRUE') return true;
  if (value === 'false' || value === 'FALSE') return false;
  return undefined;
}

/** Date only, or date and time with an optional zone; no zone means UTC, never the server's. */
export const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

export function toDate(value: unknown): Date | undefined {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : value;
  if (typeof value !== 'string') return undefined;
  const m = ISO_DATE.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h = '00', mi = '00', s = '00', frac = '', zone = 'Z'] = m;
  const date = new Date(`${y}-${mo}-${d}T${h}:${mi}:${s}${frac.slice(0, 4)}${zone}`);
  // Date() rolls 2024-02-31 over to March; a date that does not round-trip is not a date.
  if (Number.isNaN(date.getTime())) return undefined;
  if (zone === 'Z' && date.toISOString().slice(0, 10) !== `${y}-${mo}-${d}`) return undefined;
  return date;
}

/** Dates are shown in UTC; one at midnight is a plain date, anything else carries its time. */
export function isDateOnly(date: Date): boolean {
  return date.getTime() % 86_400_000 === 0;
}

/** `2024-01-31` for a plain date, the full ISO 8601 instant otherwise. */
export function formatIsoDate(date: Date): string {
  const iso = date.toISOString();
  return isDateOnly(date) ? iso.slice(0, 10) : iso;
}

export function isBlank(value: unknown): boolean {
  return value === null || value === undefined || value === '';
}

/** How a value that fits no column type still reads as text. */
export function asText(value: unknown): string {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? '' : formatIsoDate(value);
  if (typeof value === 'object' && value !== null) return JSON.stringify(value);
  return String(value);
}

/** Link schemes a `url` cell may carry: nothing that runs script or opens local files. */
export const URL_SCHEMES = ['http:', 'https:', 'mailto:'] as const;

/** The URL a `url` cell links to, or undefined when it is not an http, https or mailto URL. */
export function linkTarget(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > 2048) return undefined;
  try {
    const url = new URL(value);
    return (URL_SCHEMES as readonly string[]).includes(url.protocol) ? url.href : undefined;
  } catch {
    return undefined;
  }
}
