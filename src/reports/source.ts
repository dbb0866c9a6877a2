import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SourceRejected } from '../errors';
import { readCsvFile } from './read-csv';
import { readXlsxFile } from './read-xlsx';
import { DEFAULT_SOURCE_LIMITS, type SourceLimits, type SourceTable } from './source-table';
import { scratchTemp } from './scratch';

const ZIP_MAGIC = Buffer.from([0x50, 0x4b, 0x03, 0x04]);
/** Old binary Office files (.xls) start with the OLE2 compound-file signature. */
const OLE_MAGIC = Buffer.from([0xd0, 0xcf, 0x11, 0xe0]);

/** Copies the upload to a private temp file, refusing it past `maxBytes`. */
async function spoolUpload(input: Readable, file: string, maxBytes: number): Promise<void> {
  let size = 0;
  async function* capped(source: AsyncIterable<Buffer>) {
    for await (const chunk of source) {
      size += chunk.length;
      if (size > maxBytes) throw new SourceRejected(`The file is larger than the ${maxBytes} bytes allowed for a report source.`);
      yield chunk;
    }
  }
  await pipeline(input, capped, fs.createWriteStream(file, { flags: 'wx', mode: 0o600 }));
}

async function sniff(file: string): Promise<Buffer> {
  const handle = await fsp.open(file, 'r');
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(4096), 0, 4096, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/**
 * Reads an uploaded CSV or XLSX, streamed from a store, into typed columns (from the header row),
 * rows and a log of what was read and skipped. The kind is told by content, not by name: a zip is
 * read as xlsx (`sheet` picks a sheet by name, else the first), anything else must be UTF-8 text.
 * The upload is copied to a temp file first because a zip's directory is at its end. Every
 * problem with the file is a SourceRejected (422) with a message for the user.
 */
export async function readSource(
  input: Readable,
  options: { sheet?: string; limits?: Partial<SourceLimits>; scratchDir?: string } = {},
): Promise<SourceTable> {
  const limits = { ...DEFAULT_SOURCE_LIMITS, ...options.limits };
  // In the process's work directory: if the process dies mid-read, the copy is swept with it.
  const dir = await scratchTemp(options.scratchDir, 'source-');
  const file = path.join(dir, 'upload');
  try {
    await spoolUpload(input, file, limits.maxBytes);
    const head = await sniff(file);
    if (head.length === 0) throw new SourceRejected('The file is empty.');
    if (head.subarray(0, 4).equals(ZIP_MAGIC)) return await readXlsxFile(file, options.sheet, limits);
    if (head.subarray(0, 4).equals(OLE_MAGIC)) {
      throw new SourceRejected('This looks like an old Excel (.xls) file; save it as .xlsx or .csv and upload it again.');
    }
    if (head.includes(0)) throw new SourceRejected('The file is neither a CSV text file nor an xlsx workbook.');
    return await readCsvFile(file, limits);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}
