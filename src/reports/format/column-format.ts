import type { Column } from '../spec';
import { asText, isBlank, isDateOnly, toBoolean, toDate, toNumber } from '../values';
import { compileFormat, type Formatted, type Formatter } from './number-format';

/**
 * The format codes a column gets when its request names none; the xlsx writes these same codes
 * (built-in ids where Excel has them), so both outputs agree. Integers are never grouped by
 * default: an integer column is as often an id, an order or a year (1000, 2024) as a quantity,
 * and "1,000" misreads an id; ask for grouping with `"numberFormat": "#,##0"`. `number` is
 * Excel's General (no grouping, up to 10 significant digits), currency two decimals grouped.
 */
export const DEFAULT_CODES = {
  integer: '0',
  number: 'General',
  currency: '#,##0.00',
  date: 'yyyy-mm-dd',
  dateTime: 'yyyy-mm-dd hh:mm:ss',
} as const;

export function isNumeric(column: Column): boolean {
  return column.type === 'number' || column.type === 'integer' || column.type === 'currency';
}

/** `id`, `order_id`, `Order id`, `customerId`, `ID-2`: a key or header that names an identifier. */
const ID_NAME = /(^|[^a-z])id([^a-z]|$)|[a-z]Id([^a-z]|$)/i;

/**
 * An integer column named as an identifier (by its key or header) is not summed in totals: a total
 * of order ids means nothing. Give it a numberFormat to have it summed like any other number.
 */
export function isIdentifier(column: Column): boolean {
  return column.type === 'integer' && column.numberFormat === undefined && (ID_NAME.test(column.key) || ID_NAME.test(column.header));
}

/** The code a column's cells are shown with; for dates, the one for values with a time of day too. */
export function columnCodes(column: Column): { body: string; withTime: string } | undefined {
  switch (column.type) {
    case 'integer':
    case 'number':
    case 'currency': {
      const code = column.numberFormat ?? DEFAULT_CODES[column.type];
      return { body: code, withTime: code };
    }
    case 'date':
      return { body: column.numberFormat ?? DEFAULT_CODES.date, withTime: column.numberFormat ?? DEFAULT_CODES.dateTime };
    default:
      return undefined;
  }
}

/** Turns one column's values into text as Excel would show them with the column's code. */
export type CellText = (value: unknown) => Formatted;

export function cellText(column: Column): CellText {
  const codes = columnCodes(column);
  const compile = (code: string): Formatter => {
    const f = compileFormat(code);
    // spec.ts refuses unsupported codes for the formats that render text; this is a programming error.
    if (!f) throw new Error(`unsupported number format "${code}"`);
    return f;
  };
  const plain = (value: unknown): Formatted => ({ text: isBlank(value) ? '' : asText(value) });
  switch (column.type) {
    case 'integer':
    case 'number':
    case 'currency': {
      const f = compile(codes!.body);
      return (value) => {
        if (isBlank(value)) return { text: '' };
        const n = toNumber(value);
        return n === undefined ? plain(value) : f(n);
      };
    }
    case 'date': {
      const body = compile(codes!.body);
      const withTime = compile(codes!.withTime);
      return (value) => {
        if (isBlank(value)) return { text: '' };
        const d = toDate(value);
        if (!d) return plain(value);
        return (isDateOnly(d) ? body : withTime)(d);
      };
    }
    case 'boolean':
      return (value) => {
        const b = toBoolean(value);
        return b === undefined ? plain(value) : { text: b ? 'Yes' : 'No' };
      };
    case 'string':
    case 'url':
      return plain;
  }
}
