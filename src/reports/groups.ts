import { Unprocessable } from '../errors';
import { cellText, isIdentifier, isNumeric } from './format';
import type { Column, Row } from './spec';
import { asText, isBlank, toInteger, toNumber } from './values';

/** A group starting (before its first row) or ending (after its last), level 1 outermost. */
export type GroupEvent =
  | { kind: 'open'; level: number; column: number; label: string }
  | { kind: 'close'; level: number; column: number; label: string; sums: number[] };

/** A numeric column's value as it is summed (and written as a number); undefined for anything else. */
export function summedValue(column: Column, value: unknown): number | undefined {
  if (!isNumeric(column)) return undefined;
  return column.type === 'integer' ? toInteger(value) : toNumber(value);
}

/**
 * The columns options.groupBy names, by key or (for a source, whose keys are c1, c2...) by header.
 * Checked here because a source's columns are only known once it is read.
 */
export function groupColumns(columns: Column[], groupBy: string[] | undefined): number[] {
  return (groupBy ?? []).map((name) => {
    let index = columns.findIndex((c) => c.key === name);
    if (index < 0) index = columns.findIndex((c) => c.header === name);
    if (index < 0) throw new Unprocessable(`options.groupBy: "${name}" is not one of the columns' keys or headers.`, 'invalid_report');
    return index;
  });
}

/**
 * Groups are runs of consecutive rows with equal keys: a report streams its rows once with flat
 * memory, so it cannot sort a million of them; rows come grouped as the caller sorted them, and a
 * key that comes back later starts a group of its own (as Excel's Data > Subtotal does).
 */
export class Groups {
  private readonly keys: (string | undefined)[];
  private readonly labels: string[];
  private readonly sums: number[][];
  private readonly texts: ((value: unknown) => string)[];

  constructor(
    private readonly columns: Column[],
    private readonly by: number[],
  ) {
    this.keys = by.map(() => undefined);
    this.labels = by.map(() => '');
    this.sums = by.map(() => columns.map(() => 0));
    this.texts = by.map((i) => {
      const text = cellText(columns[i]);
      return (value) => text(value).text || '(blank)';
    });
  }

  get levels(): number {
    return this.by.length;
  }

  /** Whether column `i` gets sums in subtotal and total rows: numbers, but not ids or group keys. */
  isSummed(i: number): boolean {
    return isNumeric(this.columns[i]) && !isIdentifier(this.columns[i]) && !this.by.includes(i);
  }

  /** The groups that end before `row`, innermost first, then those that start with it. */
  *before(row: Row): Generator<GroupEvent> {
    const changed = this.by.findIndex((c, level) => this.keys[level] !== keyOf(row[this.columns[c].key]));
    if (changed < 0) return;
    if (this.keys[0] !== undefined) yield* this.closeFrom(changed);
    for (let level = changed; level < this.by.length; level++) {
      const value = row[this.columns[this.by[level]].key];
      this.keys[level] = keyOf(value);
      this.labels[level] = this.texts[level](value);
      this.sums[level].fill(0);
      yield { kind: 'open', level: level + 1, column: this.by[level], label: this.labels[level] };
    }
  }

  /** Adds `row`'s values to every open group's sums. */
  add(row: Row): void {
    if (!this.by.length) return;
    this.columns.forEach((c, i) => {
      const n = this.isSummed(i) ? summedValue(c, row[c.key]) : undefined;
      if (n !== undefined) for (const sums of this.sums) sums[i] += n;
    });
  }

  /** The groups still open at the end, innermost first. */
  *end(): Generator<GroupEvent> {
    if (this.keys[0] !== undefined) yield* this.closeFrom(0);
  }

  private *closeFrom(level: number): Generator<GroupEvent> {
    for (let l = this.by.length - 1; l >= level; l--) {
      yield { kind: 'close', level: l + 1, column: this.by[l], label: this.labels[l], sums: [...this.sums[l]] };
      this.keys[l] = undefined;
    }
  }
}

function keyOf(value: unknown): string {
  return isBlank(value) ? '' : asText(value);
}
