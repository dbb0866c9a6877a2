import type { Column, ColumnType, Row } from './spec';
import { toDate } from './values';

/** Plain decimals only: "007" or "1e5" stay text, since leading zeros and codes matter. */
const DECIMAL = /^-?(0|[1-9]\d*)(\.\d+)?$/;
const INTEGER = /^-?(0|[1-9]\d*)$/;

function typeOf(value: unknown): ColumnType | undefined {
  if (value === null || value === undefined || value === '') return undefined;
  if (typeof value === 'boolean') return 'boolean';
  if (typeof value === 'number') return Number.isSafeInteger(value) ? 'integer' : 'number';
  if (value instanceof Date) return 'date';
  const text = String(value);
  if (INTEGER.test(text) && Number.isSafeInteger(Number(text))) return 'integer';
  if (DECIMAL.test(text)) return 'number';
  if (text === 'true' || text === 'false' || text === 'TRUE' || text === 'FALSE') return 'boolean';
  if (/^\d{4}-\d{2}-\d{2}/.test(text) && toDate(text)) return 'date';
  return 'string';
}

function merge(a: ColumnType | undefined, b: ColumnType | undefined): ColumnType | undefined {
  if (a === undefined || a === b) return b ?? a;
  if (b === undefined) return a;
  if ((a === 'integer' && b === 'number') || (a === 'number' && b === 'integer')) return 'number';
  return 'string';
}

/**
 * Columns for a table read from a file: headers from its header row (blank ones named
 * "Column N", repeats numbered), each typed by every value under it (all whole numbers:
 * integer; all numbers: number; all ISO dates: date; true/false: boolean; otherwise string).
 * Keys are c1, c2, ... so any header text is safe.
 */
export function inferColumns(headers: string[], rows: Row[]): Column[] {
  const seen = new Map<string, number>();
  return headers.map((raw, i) => {
    const key = `c${i + 1}`;
    let header = raw.trim() || `Column ${i + 1}`;
    const count = (seen.get(header) ?? 0) + 1;
    seen.set(header, count);
    if (count > 1) header = `${header} (${count})`;
    let type: ColumnType | undefined;
    for (const row of rows) type = merge(type, typeOf(row[key]));
    return { key, header, type: type ?? 'string' };
  });
}
