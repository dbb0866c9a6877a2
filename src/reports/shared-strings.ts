import { SourceRejected } from '../errors';

/** Bytes the table counts for each string besides its text: where it is (page, offset, length). */
export const ENTRY_BYTES = 12;
const FIRST_PAGE = 64 * 1024;
const MAX_PAGE = 4 * 1024 * 1024;
/** Strings per index page (three uint32 each). */
const INDEX_PAGE = 16 * 1024;

/**
 * An xlsx's shared-strings table, held as UTF-8 in a few large buffers with a compact index,
 * rather than as one JavaScript string per entry: a table of millions of short strings then
 * costs its bytes plus 12 per string, which is what `maxBytes`
 * (REPORT_SOURCE_MAX_SHARED_STRINGS_BYTES) counts, and nothing it does not count. A cell that
 * refers to a string decodes it when it is read.
 */
export class SharedStrings {
  private readonly pages: Buffer[] = [];
  private pageUsed = 0;
  private readonly index: Uint32Array[] = [];
  private count = 0;
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  get size(): number {
    return this.count;
  }

  add(text: string): void {
    const length = Buffer.byteLength(text, 'utf8');
    this.bytes += length + ENTRY_BYTES;
    if (this.bytes > this.maxBytes) {
      throw new SourceRejected(
        `The xlsx file's shared strings take more than the ${this.maxBytes} bytes allowed (REPORT_SOURCE_MAX_SHARED_STRINGS_BYTES); it may be a zip bomb.`,
      );
    }
    let page = this.pages[this.pages.length - 1];
    if (!page || this.pageUsed + length > page.length) {
      // Pages grow with the table (a small workbook allocates 64 KiB), and always fit the string.
      const size = Math.max(length, Math.min(MAX_PAGE, Math.max(FIRST_PAGE, this.bytes)));
      page = Buffer.allocUnsafe(size);
      this.pages.push(page);
      this.pageUsed = 0;
    }
    const offset = this.pageUsed;
    this.pageUsed += page.write(text, offset, 'utf8');
    const slot = (this.count % INDEX_PAGE) * 3;
    if (slot === 0) this.index.push(new Uint32Array(INDEX_PAGE * 3));
    const entries = this.index[this.index.length - 1];
    entries[slot] = this.pages.length - 1;
    entries[slot + 1] = offset;
    entries[slot + 2] = length;
    this.count++;
  }

  /** The string at `i`, or undefined when the table has no such entry. */
  get(i: number): string | undefined {
    if (!Number.isInteger(i) || i < 0 || i >= this.count) return undefined;
    const entries = this.index[Math.floor(i / INDEX_PAGE)];
    const slot = (i % INDEX_PAGE) * 3;
    const offset = entries[slot + 1];
    return this.pages[entries[slot]].toString('utf8', offset, offset + entries[slot + 2]);
  }
}
