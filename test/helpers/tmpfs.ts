import { execFile } from 'node:child_process';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { makeTempDir } from './tmp';

const run = promisify(execFile);

/** Mounting a filesystem needs root: the tests that fill a disk run only then (CI runs as root). */
export const CAN_MOUNT = process.getuid?.() === 0;

/** A small tmpfs mounted on a fresh temp dir: a disk that can be filled in a test. */
export interface SmallDisk {
  dir: string;
  /** Bytes a file can still take. */
  free(): Promise<number>;
  /** Writes a filler file leaving about `leaveBytes` free (tmpfs counts whole pages); returns it. */
  fill(leaveBytes?: number): Promise<string>;
  /** Removes the filler files. */
  empty(): Promise<void>;
  unmount(): Promise<void>;
}

export async function mountSmallDisk(size = '24m'): Promise<SmallDisk> {
  const dir = await makeTempDir('stowage-disk-');
  await run('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  const fillers: string[] = [];
  const free = async () => {
    const stats = await fsp.statfs(dir);
    return stats.bavail * stats.bsize;
  };
  return {
    dir,
    free,
    async fill(leaveBytes = 0) {
      const file = path.join(dir, `filler-${fillers.length}`);
      fillers.push(file);
      const bytes = Math.max(0, (await free()) - leaveBytes);
      await fsp.writeFile(file, Buffer.alloc(bytes));
      return file;
    },
    async empty() {
      for (const file of fillers.splice(0)) await fsp.rm(file, { force: true });
    },
    async unmount() {
      // Lazily if something still holds a file open there: detached now, freed when it closes.
      await run('umount', [dir]).catch(() => run('umount', ['-l', dir]));
      await fsp.rm(dir, { recursive: true, force: true });
    },
  };
}
