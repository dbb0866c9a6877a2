import { watch } from 'node:fs';
import { on } from 'node:events';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export async function makeTempDir(prefix = 'stowage-test-'): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), prefix));
}

/** Every regular file under `dir`, relative, including dot-directories (temp files). */
export async function listFilesDeep(dir: string): Promise<string[]> {
  const entries = await fsp.readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

/**
 * Resolves once `file`'s size passes `ok`. Change events are queued from before the first stat,
 * so a write that lands between a stat and the next wait still wakes it (awaiting `once` after
 * each stat could miss the last change and wait for ever).
 */
export async function untilFileSize(file: string, ok: (size: number) => boolean): Promise<void> {
  const watcher = watch(file);
  const changes = on(watcher, 'change');
  try {
    while (!ok((await fsp.stat(file)).size)) await changes.next();
  } finally {
    watcher.close();
    await changes.return?.();
  }
}
