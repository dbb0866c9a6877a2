import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { type Readable, Transform } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { BlobNotFound, InsufficientStorage, StoreUnavailable } from '../errors';
import { assertValidKey, type BlobInfo, type ByteRange, type ListOptions, type ListPage, type PutOptions, type Store } from './store';

/** Internal names start with a dot; keys never do, so the two can't collide. */
const TEMP_DIR = '.tmp';
/**
 * While a large file streams in, its bytes are pushed to disk every this many bytes, in the
 * background. The kernel otherwise keeps gigabytes dirty in memory and the final fsync would
 * write all of it after the last byte arrived; syncing as we go overlaps the disk's work with
 * the network's, so the final fsync only has the tail left (measured in `npm run bench`).
 */
const SYNC_EVERY_BYTES = 64 * 1024 * 1024;

function isErrno(err: unknown, ...codes: string[]): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' && codes.includes(code);
}

/** Runs `op`; if it fails because `dir` doesn't exist, creates `dir` and runs it once more. */
async function retryIfMissing<T>(op: () => Promise<T>, dir: string): Promise<T> {
  try {
    return await op();
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
    await fsp.mkdir(dir, { recursive: true });
    return op();
  }
}

/** Passes chunks through, starting a background fdatasync of `file` every SYNC_EVERY_BYTES. */
function syncingAsItGoes(file: fsp.FileHandle): Transform {
  let unsynced = 0;
  let syncing = false;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      unsynced += chunk.length;
      if (unsynced >= SYNC_EVERY_BYTES && !syncing) {
        unsynced = 0;
        syncing = true;
        // Not awaited: writes go on meanwhile. A failure here is seen again by the final fsync.
        file.datasync().then(
          () => (syncing = false),
          () => (syncing = false),
        );
      }
      done(null, chunk);
    },
  });
}

/**
 * Blobs as files under a root directory: `tmp` (os.tmpdir()/stowage) and `volume` (a mounted
 * disk) are this same driver at different roots. Writes go to `<root>/.tmp/<instance>.<uuid>.part`,
 * are flushed to disk, then renamed into place, so a reader never sees a partial file and a failed
 * write leaves nothing under its key.
 *
 * A temp file is named after the process writing it (`instance`, see src/instance.ts): a process
 * killed mid-write leaves one behind, and the leftover sweep (src/leftovers.ts) removes it once
 * that process is known dead, never while it runs, even from another instance sharing the volume.
 */
export class FileSystemStore implements Store {
  /** Where writes in progress live: `<root>/.tmp`. */
  readonly tempDirectory: string;

  constructor(
    readonly driver: 'tmp' | 'volume',
    private readonly root: string,
    private readonly options: { instance?: string } = {},
  ) {
    this.tempDirectory = path.join(root, TEMP_DIR);
  }

  get location(): string {
    return this.root;
  }

  /**
   * Creates the directories. Called once at startup. Temp files left by a crash are not removed
   * here: only the leftover sweep can tell them from a live write of another process.
   */
  async prepare(): Promise<void> {
    await fsp.mkdir(this.tempDirectory, { recursive: true });
  }

  private tempName(): string {
    return this.options.instance ? `${this.options.instance}.${randomUUID()}.part` : `${randomUUID()}.part`;
  }

  private pathOf(key: string): string {
    assertValidKey(key);
    return path.join(this.root, ...key.split('/'));
  }

  async put(key: string, body: Readable, options: PutOptions = {}): Promise<{ size: number }> {
    const target = this.pathOf(key);
    const temp = path.join(this.tempDirectory, this.tempName());
    let out: fs.WriteStream | undefined;
    try {
      // A tmp reaper may have wiped the temp dir since startup: recreate it when it's gone.
      const file = await retryIfMissing(() => fsp.open(temp, 'wx'), this.tempDirectory);
      // `flush` fsyncs before close, so the rename below publishes bytes that are on disk.
      // 1 MiB lets chunks gather into fewer, larger writes (measured in `npm run bench`).
      out = file.createWriteStream({ flush: true, highWaterMark: 1024 * 1024 });
      await pipeline(body, syncingAsItGoes(file), out, { signal: options.signal });
      const size = out.bytesWritten;
      await retryIfMissing(() => fsp.rename(temp, target), path.dirname(target));
      await this.syncDir(path.dirname(target));
      return { size };
    } catch (err) {
      body.destroy();
      // The file may still be opening; removing it before then would let the open recreate it.
      if (out) await finished(out).catch(() => undefined);
      // Best effort: when the directory itself is what failed, the original error is the one to report.
      await fsp.rm(temp, { force: true }).catch(() => undefined);
      // An abort surfaces as a generic AbortError; callers want the reason they aborted with.
      throw options.signal?.aborted ? options.signal.reason : this.wrap(err, `write ${key}`);
    }
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    const file = this.pathOf(key);
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(file, 'r');
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) throw new BlobNotFound(key, { cause: err });
      throw this.wrap(err, `read ${key}`);
    }
    // Read to the file's end as it is now (blobs never change once in place): a stream that knows
    // it sizes its buffers to what is left, where a small file would get 256 KiB, copied into a
    // smaller one, and a second read to find the end. fstat on an open descriptor doesn't wait on the disk.
    let end = range?.end;
    if (end === undefined) {
      try {
        const { size } = fs.fstatSync(handle.fd);
        if (size > 0) end = size - 1;
      } catch (err) {
        await handle.close().catch(() => undefined);
        throw this.wrap(err, `read ${key}`);
      }
    }
    return handle.createReadStream({ start: range?.start, end, highWaterMark: 256 * 1024 });
  }

  async read(key: string, start: number, length: number): Promise<Buffer> {
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(this.pathOf(key), 'r');
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) throw new BlobNotFound(key, { cause: err });
      throw this.wrap(err, `read ${key}`);
    }
    const buffer = Buffer.allocUnsafe(length);
    let bytesRead: number;
    try {
      ({ bytesRead } = await handle.read(buffer, 0, length, start));
    } catch (err) {
      throw this.wrap(err, `read ${key}`);
    } finally {
      await handle.close().catch(() => undefined);
    }
    // A regular file gives what it has in one read: less means the blob is shorter than its record.
    if (bytesRead < length) throw new Error(`The blob ${key} ends before byte ${start + length} (${bytesRead} of ${length} bytes from ${start}).`);
    return buffer;
  }

  async head(key: string): Promise<BlobInfo | undefined> {
    try {
      const stat = await fsp.stat(this.pathOf(key));
      return stat.isFile() ? { key, size: stat.size, modifiedAt: stat.mtime } : undefined;
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) return undefined;
      throw this.wrap(err, `stat ${key}`);
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await fsp.rm(this.pathOf(key), { force: true });
    } catch (err) {
      throw this.wrap(err, `delete ${key}`);
    }
  }

  async list({ prefix = '', cursor, limit = 1000 }: ListOptions = {}): Promise<ListPage> {
    const items: BlobInfo[] = [];
    try {
      for await (const info of this.walk('', prefix, cursor)) {
        if (items.length === limit) return { items, cursor: items[items.length - 1].key };
        items.push(info);
      }
    } catch (err) {
      throw this.wrap(err, 'list');
    }
    return { items };
  }

  /**
   * Yields blobs in lexicographic key order, one directory listing at a time, skipping whole
   * subtrees that sort before the cursor or outside the prefix, so memory stays bounded.
   */
  private async *walk(dir: string, prefix: string, cursor?: string): AsyncGenerator<BlobInfo> {
    let entries: fs.Dirent[];
    try {
      entries = await fsp.readdir(path.join(this.root, dir), { withFileTypes: true });
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return;
      throw err;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      if (entry.name.startsWith('.')) continue;
      const key = dir ? `${dir}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        const sub = `${key}/`;
        if (!(prefix.startsWith(sub) || sub.startsWith(prefix))) continue;
        if (cursor !== undefined && !cursor.startsWith(sub) && sub < cursor) continue;
        yield* this.walk(key, prefix, cursor);
      } else if (entry.isFile() && key.startsWith(prefix) && (cursor === undefined || key > cursor)) {
        const stat = await fsp.stat(path.join(this.root, key)).catch(() => undefined);
        if (stat) yield { key, size: stat.size, modifiedAt: stat.mtime };
      }
    }
  }

  async probe(): Promise<void> {
    const file = path.join(this.tempDirectory, `probe-${randomUUID()}`);
    try {
      await fsp.mkdir(this.tempDirectory, { recursive: true });
      await fsp.writeFile(file, 'probe', { flag: 'wx' });
      if ((await fsp.readFile(file, 'utf8')) !== 'probe') throw new Error('probe read back different bytes');
      await fsp.rm(file);
    } catch (err) {
      await fsp.rm(file, { force: true }).catch(() => undefined);
      throw new StoreUnavailable(`The ${this.driver} store is not writable.`, { cause: err });
    }
  }

  /** Local disk: the write probe itself costs next to nothing, and proves what a read can't. */
  check(): Promise<void> {
    return this.probe();
  }

  async adopt(key: string, file: string): Promise<{ size: number }> {
    const target = this.pathOf(key);
    try {
      const handle = await fsp.open(file, 'r');
      let size: number;
      try {
        await handle.sync();
        size = (await handle.stat()).size;
      } finally {
        await handle.close();
      }
      await retryIfMissing(() => fsp.rename(file, target), path.dirname(target));
      await this.syncDir(path.dirname(target));
      return { size };
    } catch (err) {
      throw this.wrap(err, `move ${key} into place`);
    }
  }

  async close(): Promise<void> {}

  private async syncDir(dir: string): Promise<void> {
    const handle = await fsp.open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  private wrap(err: unknown, what: string): unknown {
    if (isErrno(err, 'ENOSPC', 'EDQUOT')) {
      return new InsufficientStorage(`No space left in the ${this.driver} store.`, { cause: err });
    }
    if (isErrno(err, 'EACCES', 'EPERM', 'EROFS', 'ENOENT', 'ENOTDIR', 'EIO')) {
      return new StoreUnavailable(`The ${this.driver} store failed to ${what}.`, { cause: err });
    }
    return err;
  }
}
