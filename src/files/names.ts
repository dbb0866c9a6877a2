import { randomBytes } from 'node:crypto';

const MAX_NAME_LENGTH = 200;

/**
 * A display name safe to show and to put in Content-Disposition: no directory part (either
 * separator), no control characters or NUL, no leading dots, at most 200 characters with the
 * extension kept. It is never used as a filesystem path; store keys come from `newFileId`.
 */
export function sanitizeFilename(original: string): string {
  const base = original.split(/[/\\]/).pop() ?? '';
  let name = base
    .normalize('NFC')
    // \p{Cc}: NUL and C0/C1 controls; \p{Cf}: invisible format chars such as bidi overrides.
    .replace(/[\p{Cc}\p{Cf}]/gu, '')
    .replace(/[<>:"|?*]/g, '_')
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/^\.+/, '')
    .replace(/[. ]+$/, '');
  if ([...name].length > MAX_NAME_LENGTH) {
    const chars = [...name];
    const dot = name.lastIndexOf('.');
    const ext = dot > 0 && name.length - dot <= 16 ? [...name.slice(dot)] : [];
    name = chars.slice(0, MAX_NAME_LENGTH - ext.length).join('') + ext.join('');
  }
  return name || 'file';
}

/** 128 random bits, lowercase hex: unguessable, URL-safe, and safe on case-insensitive disks. */
export function newFileId(): string {
  return randomBytes(16).toString('hex');
}

/** Store key for a file id, sharded by its first two characters to keep directories small. */
export function storeKeyFor(id: string): string {
  return `${id.slice(0, 2)}/${id}`;
}
