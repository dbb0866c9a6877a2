import zlib from 'node:zlib';
import { Unprocessable } from '../errors';
import { drainedOrClosed } from './writer';

export interface ZipEntry {
  name: string;
  /** Small parts are given whole; big ones stream through deflate as they are produced. */
  data: Buffer | AsyncIterable<Buffer>;
  /** Deflate level of a streamed entry: STREAM_LEVEL unless given. */
  level?: number;
}

const LIMIT_32 = 0xffff_ffff;
/**
 * Deflate level for streamed entries. On 1M rows x 10 columns of sheet XML, level 1 made a 74 MB
 * file and the default 6 a 60 MB one, with the whole write taking about 15% longer at 6: markup
 * this repetitive compresses well at any level, so speed wins.
 */
const STREAM_LEVEL = 1;
const MAX_QUEUED = 1024 * 1024;
const FLAG_DATA_DESCRIPTOR = 0x0008;
const FLAG_UTF8 = 0x0800;

interface Written {
  name: Buffer;
  flags: number;
  crc: number;
  compressedSize: number;
  size: number;
  offset: number;
}

// 1980-01-01 00:00 in MS-DOS format: a fixed stamp keeps output reproducible.
const DOS_TIME = 0;
const DOS_DATE = (0 << 9) | (1 << 5) | 1;

function localHeader(e: Omit<Written, 'offset'>): Buffer {
  const b = Buffer.alloc(30);
  b.writeUInt32LE(0x04034b50, 0);
  b.writeUInt16LE(20, 4);
  b.writeUInt16LE(e.flags, 6);
  b.writeUInt16LE(8, 8); // deflate
  b.writeUInt16LE(DOS_TIME, 10);
  b.writeUInt16LE(DOS_DATE, 12);
  b.writeUInt32LE(e.crc, 14);
  b.writeUInt32LE(e.compressedSize, 18);
  b.writeUInt32LE(e.size, 22);
  b.writeUInt16LE(e.name.length, 26);
  b.writeUInt16LE(0, 28);
  return Buffer.concat([b, e.name]);
}

function dataDescriptor(e: Written): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32LE(0x08074b50, 0);
  b.writeUInt32LE(e.crc, 4);
  b.writeUInt32LE(e.compressedSize, 8);
  b.writeUInt32LE(e.size, 12);
  return b;
}

function centralHeader(e: Written): Buffer {
  const b = Buffer.alloc(46);
  b.writeUInt32LE(0x02014b50, 0);
  b.writeUInt16LE(20, 4);
  b.writeUInt16LE(20, 6);
  b.writeUInt16LE(e.flags, 8);
  b.writeUInt16LE(8, 10);
  b.writeUInt16LE(DOS_TIME, 12);
  b.writeUInt16LE(DOS_DATE, 14);
  b.writeUInt32LE(e.crc, 16);
  b.writeUInt32LE(e.compressedSize, 20);
  b.writeUInt32LE(e.size, 24);
  b.writeUInt16LE(e.name.length, 28);
  b.writeUInt32LE(e.offset, 42);
  return Buffer.concat([b, e.name]);
}

function endOfCentralDirectory(count: number, size: number, offset: number): Buffer {
  const b = Buffer.alloc(22);
  b.writeUInt32LE(0x06054b50, 0);
  b.writeUInt16LE(count, 8);
  b.writeUInt16LE(count, 10);
  b.writeUInt32LE(size, 12);
  b.writeUInt32LE(offset, 16);
  return b;
}

function checkFits(what: string, n: number): void {
  if (n > LIMIT_32) throw new Unprocessable(`The report is too large for an xlsx file (${what} over 4 GiB).`, 'report_too_large');
}

/** Deflates `source` as it arrives, yielding compressed chunks; reports crc and sizes at the end. */
async function* deflateStream(source: AsyncIterable<Buffer>, totals: { crc: number; size: number; compressedSize: number }, level = STREAM_LEVEL) {
  const deflate = zlib.createDeflateRaw({ level, chunkSize: 64 * 1024 });
  const feed = (async () => {
    for await (const chunk of source) {
      totals.crc = zlib.crc32(chunk, totals.crc);
      totals.size += chunk.length;
      deflate.write(chunk);
      // Past zlib's own 16 KiB mark, so the next rows are generated while its thread compresses.
      if (deflate.writableLength > MAX_QUEUED) {
        await drainedOrClosed(deflate);
        if (deflate.destroyed) return;
      }
    }
    deflate.end();
  })().catch((err: unknown) => deflate.destroy(err as Error));
  try {
    for await (const chunk of deflate) {
      totals.compressedSize += (chunk as Buffer).length;
      yield chunk as Buffer;
    }
    await feed;
  } finally {
    deflate.destroy();
  }
}

/**
 * A ZIP archive (as xlsx needs: deflate, no encryption) written front to back, so it can be piped
 * into a store without ever being held in memory or on disk. Streamed entries carry their CRC and
 * sizes in a data descriptor after the data. Entries are pulled one at a time, so a later entry
 * can depend on what an earlier one counted while it streamed.
 *
 * Hand-written rather than yazl: yazl computes CRC-32 in JavaScript and does not pass a source
 * stream's error on to its output; here CRC-32 is zlib's native one and errors propagate. No
 * ZIP64: an entry or archive past 4 GiB is refused, which Excel could not open anyway.
 */
export async function* zipStream(entries: Iterable<ZipEntry> | AsyncIterable<ZipEntry>): AsyncGenerator<Buffer> {
  const written: Written[] = [];
  let offset = 0;
  for await (const entry of entries) {
    const name = Buffer.from(entry.name, 'utf8');
    checkFits('archive', offset);
    if (Buffer.isBuffer(entry.data)) {
      const compressed = zlib.deflateRawSync(entry.data);
      const e = { name, flags: FLAG_UTF8, crc: zlib.crc32(entry.data), compressedSize: compressed.length, size: entry.data.length, offset };
      const header = localHeader(e);
      yield header;
      yield compressed;
      offset += header.length + compressed.length;
      written.push(e);
    } else {
      const flags = FLAG_UTF8 | FLAG_DATA_DESCRIPTOR;
      const header = localHeader({ name, flags, crc: 0, compressedSize: 0, size: 0 });
      yield header;
      const totals = { crc: 0, size: 0, compressedSize: 0 };
      yield* deflateStream(entry.data, totals, entry.level);
      checkFits(entry.name, totals.size);
      const e = { name, flags, offset, ...totals };
      const descriptor = dataDescriptor(e);
      yield descriptor;
      offset += header.length + totals.compressedSize + descriptor.length;
      written.push(e);
    }
  }
  const central = Buffer.concat(written.map(centralHeader));
  checkFits('archive', offset + central.length);
  yield central;
  yield endOfCentralDirectory(written.length, central.length, offset);
}
