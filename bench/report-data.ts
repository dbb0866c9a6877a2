import type { Column, Row } from '../src/reports/spec';

/** Ten columns of every kind a report has: integers, text, floats, currency, dates, booleans. */
export const benchColumns: Column[] = [
  { key: 'id', header: 'ID', type: 'integer' },
  { key: 'name', header: 'Customer', type: 'string' },
  { key: 'city', header: 'City', type: 'string' },
  { key: 'amount', header: 'Amount', type: 'number' },
  { key: 'qty', header: 'Quantity', type: 'integer' },
  { key: 'price', header: 'Price', type: 'currency' },
  { key: 'created', header: 'Created', type: 'date' },
  { key: 'updated', header: 'Updated', type: 'date' },
  { key: 'active', header: 'Active', type: 'boolean' },
  { key: 'note', header: 'Note', type: 'string' },
];

/** The same ten columns for grouped runs, with a team (a run of 500 rows each, grouped by) for the city. */
export const benchGroupedColumns: Column[] = benchColumns.map((c) => (c.key === 'city' ? { key: 'team', header: 'Team', type: 'string' } : c));
export const BENCH_GROUP_ROWS = 500;

const names = ['Zoë Ødegård', 'Łukasz Nowak', 'Ελένη Παππά', 'Дмитрий Иванов', 'Ana López'];
const cities = ['Oslo', 'Kraków', 'Αθήνα', 'Москва', 'Sevilla'];
/** For the mixed-script case: each of the PDF's fallback fonts, and right-to-left text. */
const mixedNames = ['王小明', '山田太郎', '김민준', 'محمد علي', 'שלום כהן', 'राहुल शर्मा', 'Zoë Ødegård'];
const mixedCities = ['北京市', '東京', '서울', 'القاهرة', 'תל אביב', 'नई दिल्ली', 'Oslo'];
const DAY = 86_400_000;
const START = Date.UTC(2020, 0, 1);

/**
 * The same `count` rows every run; every seventh note is long enough to wrap in a PDF cell.
 * `mixed`: names and cities in Chinese, Japanese, Korean, Arabic, Hebrew, Devanagari and Latin.
 */
export function* benchRows(count: number, mixed = false): Generator<Row> {
  const [n, c] = mixed ? [mixedNames, mixedCities] : [names, cities];
  for (let i = 0; i < count; i++) {
    yield {
      id: i + 1,
      team: `Team ${Math.floor(i / BENCH_GROUP_ROWS) + 1}`,
      name: `${n[i % n.length]} ${i}`,
      city: c[(i * 3) % c.length],
      amount: Math.round(i * 137.31) / 100,
      qty: i % 250,
      price: (i % 10_000) / 4,
      created: new Date(START + (i % 2000) * DAY),
      updated: new Date(START + i * 61_000),
      active: i % 3 === 0,
      note: i % 7 === 0 ? 'Follow up: the customer asked for a revised quote and delivery before the end of the month' : 'ok',
    };
  }
}
