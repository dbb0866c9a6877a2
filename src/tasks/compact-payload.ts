import { createHash } from 'node:crypto';

/** A finished task's payload this small is kept as it was (a mirror copy's `{fileId}`). */
const KEEP_WHOLE_BYTES = 4096;
/** Of a larger one, fields this small are kept (a report's title, format, source, options). */
const KEEP_FIELD_BYTES = 1024;

/**
 * What a finished task keeps of its input. Inline report rows can be megabytes; kept forever they
 * grow the catalog without bound (5 requests of 19 MB grew it by 125 MB). The small fields stay
 * (what the task was: its title and format for the page), large ones are dropped and counted, and
 * a sha256 of the whole input says what it was.
 */
export function compactPayload(payload: unknown): string {
  const json = JSON.stringify(payload) ?? 'null';
  if (Buffer.byteLength(json) <= KEEP_WHOLE_BYTES) return json;
  const summary = { bytes: Buffer.byteLength(json), sha256: createHash('sha256').update(json).digest('hex'), dropped: {} as Record<string, number> };
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return JSON.stringify({ compacted: summary });
  const kept: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(payload)) {
    if (Buffer.byteLength(JSON.stringify(value) ?? '') <= KEEP_FIELD_BYTES) kept[key] = value;
    else summary.dropped[key] = Array.isArray(value) ? value.length : Object.keys(value ?? {}).length;
  }
  return JSON.stringify({ ...kept, compacted: summary });
}
