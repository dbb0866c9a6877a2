import { columnKey } from './columns';
import type { Row } from './spec';
import { Spool } from './spool';

/** How a cell is kept in the spool: JSON, with dates tagged so they come back as dates. */
type Stored = string | number | boolean | null | { d: number };

function encode(value: unknown): Stored {
  if (value === undefined || value === null) return null;
  if (value instanceof Date) return { d: value.getTime() };
  return value as Stored;
}

/**
 * The rows of a source, written to a temp file as they are read and streamed back once to the
 * report writer, so a source of any size within the limits costs the same memory. Each row is a
 * JSON array of its cells by column index (blank cells null, dates tagged), read back as a Row
 * keyed c1, c2, ... with blank cells left out.
 */
export class RowSpool {
  private constructor(
    private readonly spool: Spool<Stored[]>,
    private readonly onRow?: () => void,
  ) {}

  /** `onRow` is called for each row written: how far reading a source has got. */
  static async create(parent?: string, onRow?: () => void): Promise<RowSpool> {
    return new RowSpool(await Spool.create<Stored[]>(parent), onRow);
  }

  write(values: readonly unknown[]): Promise<void> {
    this.onRow?.();
    return this.spool.write(values.map(encode));
  }

  finish(): Promise<void> {
    return this.spool.finish();
  }

  /** The rows, `width` columns each; read once. */
  async *rows(width: number): AsyncGenerator<Row> {
    const keys = Array.from({ length: width }, (_, i) => columnKey(i));
    for await (const values of this.spool.read()) {
      const row: Row = {};
      for (let i = 0; i < width; i++) {
        const v = values[i];
        if (v === null || v === undefined) continue;
        row[keys[i]] = typeof v === 'object' ? new Date(v.d) : v;
      }
      yield row;
    }
  }

  dispose(): Promise<void> {
    return this.spool.dispose();
  }
}
