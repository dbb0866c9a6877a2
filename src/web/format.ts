const UNITS = ['bytes', 'KB', 'MB', 'GB', 'TB'];

/** "1.5 MB": binary units, as MAX_UPLOAD_BYTES is read (1 KB = 1024 bytes). */
export function formatBytes(n: number): string {
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return n === 1 ? '1 byte' : `${n} bytes`;
  return `${Number(value.toFixed(value < 10 ? 1 : 0))} ${UNITS[unit]}`;
}

/** "2026-11-23 15:13 UTC": the server does not know the reader's time zone, so it says which it used. */
export function formatTime(iso: string): string {
  return `${new Date(iso).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}
