import type { Column, ColumnType } from './spec';
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
 * Types the columns of a table read from a file as its rows go by, keeping nothing but one type
 * per column: the rows themselves go to a spool, not into memory. Each column is typed by every
 * value under it (all whole numbers: integer; all numbers: number; all ISO dates: date;
 * true/false: boolean; otherwise string).
 */
export class ColumnTypes {
  private readonly types: (ColumnType | undefined)[] = [];

  /** One row's values, by column index. */
  add(values: readonly unknown[]): void {
    for (let i = 0; i < values.length; i++) {
      // Text stays text whatever follows.
      if (this.types[i] === 'string') continue;
      const type = typeOf(values[i]);
      if (type !== undefined) this.types[i] = merge(this.types[i], type);
    }
  }

  /**
   * Columns from the header row's texts (blank ones named "Column N", repeats numbered) and the
   * types seen. Keys are c1, c2, ... so any header text is safe.
   */
  columns(headers: string[]): Column[] {
    const seen = new Map<string, number>();
    return headers.map((raw, i) => {
      let header = raw.trim() || `Column ${i + 1}`;
      const count = (seen.get(header) ?? 0) + 1;
      seen.set(header, count);
      if (count > 1) header = `${header} (${count})`;
      return { key: columnKey(i), header, type: this.types[i] ?? 'string' };
    });
  }
}

export function columnKey(index: number): string {
  return `c${index + 1}`;
}
