import fs from 'node:fs';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SourceRejected } from '../errors';

/**
 * Copies an upload, streamed from its store, to a private temp file, refusing it past `maxBytes`
 * (REPORT_SOURCE_MAX_BYTES). A zip's directory is at its end, so an xlsx cannot be read as it
 * streams. Only I/O: this runs on the main thread, the reading in a report thread. `onChunk` is
 * called as bytes arrive.
 */
export async function spoolSource(input: Readable, file: string, maxBytes: number, onChunk?: () => void): Promise<void> {
  let size = 0;
  async function* capped(source: AsyncIterable<Buffer>) {
    for await (const chunk of source) {
      onChunk?.();
      size += chunk.length;
      if (size > maxBytes) throw new SourceRejected(`The file is larger than the ${maxBytes} bytes allowed for a report source (REPORT_SOURCE_MAX_BYTES).`);
      yield chunk;
    }
  }
  await pipeline(input, capped, fs.createWriteStream(file, { flags: 'wx', mode: 0o600 }));
}
