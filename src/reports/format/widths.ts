import type { Column, Row } from '../spec';
import type { Rows } from '../writer';
import { cellText } from './column-format';

/**
 * Rows widths are judged from: both writers must put column widths before the first row
 * (xlsx's <cols>, the pdf's page layout) and read their rows once, so they measure the first
 * SAMPLE_ROWS and no more.
 */
export const SAMPLE_ROWS = 500;

/** The first `count` rows, and all the rows again (those first ones included), still read once. */
export async function sampleRows(rows: Rows, count = SAMPLE_ROWS): Promise<{ sample: Row[]; rows: AsyncIterable<Row> }> {
  const iterator = Symbol.asyncIterator in rows ? rows[Symbol.asyncIterator]() : toAsync(rows[Symbol.iterator]());
  const sample: Row[] = [];
  let done = false;
  while (sample.length < count) {
    const next = await iterator.next();
    if (next.done) {
      done = true;
      break;
    }
    sample.push(next.value);
  }
  async function* all(): AsyncGenerator<Row> {
    yield* sample;
    if (done) return;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  }
  return { sample, rows: all() };
}

function toAsync(it: Iterator<Row>): AsyncIterator<Row> {
  return { next: async () => it.next() };
}

/** The texts a column shows for the sampled rows (the pdf measures them in its font). */
export function sampleTexts(column: Column, sample: Row[]): string[] {
  const text = cellText(column);
  return sample.map((row) => text(row[column.key]).text);
}

/** xlsx widths, in Excel's character units. */
export const XLSX_WIDTH = { min: 8, max: 60, pad: 2 } as const;

/**
 * An xlsx column's width from its content: the longest shown text among the sampled rows (or the
 * `extra` texts, e.g. totals) plus padding, at least the header and its autofilter button, capped
 * (longer text stays in its cell; Excel shows it when the cell is selected). A given `width` wins.
 */
export function xlsxWidth(column: Column, sample: Row[], extra: string[] = []): number {
  if (column.width !== undefined) return column.width;
  let longest = 0;
  for (const text of [...sampleTexts(column, sample), ...extra]) {
    // A line break shows the longest line.
    for (const line of text.split('\n')) longest = Math.max(longest, [...line].length);
  }
  const header = [...column.header].length + 4;
  return Math.min(XLSX_WIDTH.max, Math.max(XLSX_WIDTH.min, header, longest + XLSX_WIDTH.pad));
}

/**
 * What a summed column's total may show: the sampled rows' sum, or, when more rows follow the
 * sample, a hundred times it (room for two more digits), so a total is not shown as ####.
 */
export function totalSample(column: Column, sample: Row[], summed: (value: unknown) => number | undefined): string {
  let sum = 0;
  for (const row of sample) sum += Math.abs(summed(row[column.key]) ?? 0);
  if (sample.length >= SAMPLE_ROWS) sum *= 100;
  return cellText(column)(column.type === 'integer' ? Math.round(sum) : sum).text;
}
