import fsp from 'node:fs/promises';
import { SourceRejected } from '../errors';
import { readCsvFile } from './read-csv';
import { readXlsxFile } from './read-xlsx';
import { RowSpool } from './row-spool';
import { DEFAULT_SOURCE_LIMITS, type SourceLimits, type SourceTable } from './source-table';

const ZIP_MAGIC = Buffer.from([0x50, 0x4b, 0x03, 0x04]);
/** Old binary Office files (.xls) start with the OLE2 compound-file signature. */
const OLE_MAGIC = Buffer.from([0xd0, 0xcf, 0x11, 0xe0]);

async function sniff(file: string): Promise<Buffer> {
  const handle = await fsp.open(file, 'r');
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(4096), 0, 4096, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

export interface ReadSourceOptions {
  /** The sheet of a workbook to read, by name; the first by default. */
  sheet?: string;
  limits?: Partial<SourceLimits>;
  /** Where the rows are spooled (the job's temp directory, removed with it); the OS temp directory by default. */
  tempDir?: string;
  /** Called for each row read. */
  onRow?: () => void;
}

/**
 * Reads an uploaded CSV or XLSX, spooled to `file` (spool-source.ts), into typed columns (from
 * the header row), rows and a log of what was read and skipped. The kind is told by content, not
 * by name: a zip is read as xlsx (`sheet` picks a sheet by name, else the first), anything else
 * must be UTF-8 text. Every problem with the file is a SourceRejected (422) with a message for the
 * user; a limit passed names the variable that sets it. The rows stream from a spool file in
 * `tempDir`, so memory stays flat whatever the source's size: call `dispose` when done.
 */
export async function readSourceFile(file: string, options: ReadSourceOptions = {}): Promise<SourceTable & { dispose(): Promise<void> }> {
  const limits = { ...DEFAULT_SOURCE_LIMITS, ...options.limits };
  const head = await sniff(file);
  if (head.length === 0) throw new SourceRejected('The file is empty.');
  if (head.subarray(0, 4).equals(OLE_MAGIC)) {
    throw new SourceRejected('This looks like an old Excel (.xls) file; save it as .xlsx or .csv and upload it again.');
  }
  const isZip = head.subarray(0, 4).equals(ZIP_MAGIC);
  if (!isZip && head.includes(0)) throw new SourceRejected('The file is neither a CSV text file nor an xlsx workbook.');
  const spool = await RowSpool.create(options.tempDir, options.onRow);
  try {
    const { columns, log } = isZip ? await readXlsxFile(file, options.sheet, limits, spool) : await readCsvFile(file, limits, spool);
    await spool.finish();
    return { columns, log, rows: spool.rows(columns.length), dispose: () => spool.dispose() };
  } catch (err) {
    await spool.dispose();
    throw err;
  }
}
