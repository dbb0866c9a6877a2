import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** A new private directory named `<prefix>XXXXXX` in `scratchDir`, or `stowage-<prefix>XXXXXX` in the OS temp directory. */
export async function scratchTemp(scratchDir: string | undefined, prefix: string): Promise<string> {
  if (!scratchDir) return fsp.mkdtemp(path.join(os.tmpdir(), `stowage-${prefix}`));
  await fsp.mkdir(scratchDir, { recursive: true, mode: 0o700 });
  return fsp.mkdtemp(path.join(scratchDir, prefix));
}
