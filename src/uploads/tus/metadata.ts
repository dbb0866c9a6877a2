/**
 * tus `Upload-Metadata`: comma-separated `key base64value` pairs (the value may be absent).
 * Undefined when the header is malformed.
 */
export function parseUploadMetadata(header: string | undefined): Record<string, string> | undefined {
  const result: Record<string, string> = {};
  if (!header?.trim()) return result;
  for (const pair of header.split(',')) {
    const [key, value, ...rest] = pair.trim().split(' ');
    if (!key || rest.length > 0 || !/^[\x21-\x7e]+$/.test(key) || (value !== undefined && !/^[A-Za-z0-9+/]*={0,2}$/.test(value))) return undefined;
    result[key] = value === undefined ? '' : Buffer.from(value, 'base64').toString('utf8');
  }
  return result;
}
