import type { Dirent } from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Instances, InstanceRow } from './catalog/instances';
import { writerOf } from './instance';

/**
 * Files a process writes outside the catalog's knowledge while it works, which a process killed
 * mid-operation leaves behind: temp files of uploads in each directory store's `.tmp`
 * (`<instance>.<uuid>.part`), and copies of report sources (and PDF spools) in its work directory
 * `<TMPDIR>/stowage/work/<instance>/`. Each is named after the process that wrote it, so what a
 * dead process left is told from what a live one (on this host or another sharing the volume) is
 * writing now.
 */

/** Where scratch files are written. */
export interface ScratchPlaces {
  /** `.tmp` of every directory store, with the store's name. */
  tempDirs: { store: string; dir: string }[];
  /** `<TMPDIR>/stowage/work`: one directory per process. */
  workRoot: string;
  /** TMPDIR: versions before per-process directories copied sources to `stowage-source-*` (and spooled to `stowage-spool-*`) here. */
  tmpRoot: string;
}

export type LeftoverKind = 'temp' | 'source';

/** Something a process that is no longer running left behind. */
export interface Leftover {
  kind: LeftoverKind;
  /** The file (temp) or directory (source copies). */
  path: string;
  /** For a temp file, the store whose `.tmp` holds it. */
  store?: string;
  bytes: number;
  /** When it was last written (the newest file in a directory). */
  modifiedAt: Date;
  /** The instance whose name it carries, if it is named after one. */
  writer?: string;
  reason: string;
}

type Candidate = Omit<Leftover, 'reason'>;

const LEGACY_SCRATCH = /^stowage-(source|spool)-/;

async function entries(dir: string): Promise<Dirent[]> {
  return fsp.readdir(dir, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
}

/** Total size and newest modification of a directory tree (the directory's own time included). */
async function measure(dir: string): Promise<{ bytes: number; modifiedAt: Date } | undefined> {
  const own = await fsp.stat(dir).catch(() => undefined);
  if (!own) return undefined;
  let bytes = 0;
  let newest = own.mtimeMs;
  const inside = await fsp.readdir(dir, { withFileTypes: true, recursive: true }).catch(() => [] as Dirent[]);
  for (const entry of inside) {
    const stat = await fsp.stat(path.join(entry.parentPath, entry.name)).catch(() => undefined);
    if (!stat) continue;
    if (stat.isFile()) bytes += stat.size;
    newest = Math.max(newest, stat.mtimeMs);
  }
  return { bytes, modifiedAt: new Date(newest) };
}

async function* candidates(places: ScratchPlaces): AsyncGenerator<Candidate> {
  const seen = new Set<string>();
  for (const { store, dir } of places.tempDirs) {
    if (seen.has(dir)) continue;
    seen.add(dir);
    for (const entry of await entries(dir)) {
      if (!entry.isFile()) continue;
      const file = path.join(dir, entry.name);
      const stat = await fsp.stat(file).catch(() => undefined);
      if (stat) yield { kind: 'temp', path: file, store, bytes: stat.size, modifiedAt: stat.mtime, writer: writerOf(entry.name) };
    }
  }
  for (const entry of await entries(places.workRoot)) {
    if (!entry.isDirectory()) continue;
    const dir = path.join(places.workRoot, entry.name);
    const size = await measure(dir);
    if (size) yield { kind: 'source', path: dir, ...size, writer: writerOf(entry.name) };
  }
  for (const entry of await entries(places.tmpRoot)) {
    if (!entry.isDirectory() || !LEGACY_SCRATCH.test(entry.name)) continue;
    const dir = path.join(places.tmpRoot, entry.name);
    const size = await measure(dir);
    if (size) yield { kind: 'source', path: dir, ...size };
  }
}

/**
 * The verdict on one candidate: a reason it is a leftover, or undefined while its writer may be
 * at work. Named after a process that is gone: a leftover at once. After a silent one (not heard
 * from lately), or after none (an older version's names, probe files): only once unmodified for
 * `graceMs`. This process's own files, and those of any live process, are never leftovers.
 */
function verdict(c: Candidate, instances: Instances, rows: Map<string, InstanceRow>, graceMs: number, now: Date): string | undefined {
  const written = `${c.bytes} bytes, last written ${c.modifiedAt.toISOString()}`;
  const old = now.getTime() - c.modifiedAt.getTime() > graceMs;
  if (!c.writer) return old ? `${written}; not named after a running process, and untouched for longer than the grace period` : undefined;
  const row = rows.get(c.writer);
  switch (instances.stateOf(c.writer, row, now)) {
    case 'live':
      return undefined;
    case 'gone':
      return `${written}; its process (${c.writer}) is no longer running`;
    case 'silent':
      if (!old) return undefined;
      return row
        ? `${written}; its process (${c.writer}) has not been heard from since ${row.last_seen}`
        : `${written}; its process (${c.writer}) is not registered in this catalog`;
  }
}

/** Everything processes that are no longer running left in `places` (see `verdict`). */
export async function findLeftovers(
  places: ScratchPlaces,
  instances: Instances,
  graceMs: number,
  now = new Date(),
  only?: { modifiedAfter?: Date },
): Promise<Leftover[]> {
  const found: Candidate[] = [];
  for await (const c of candidates(places)) {
    if (only?.modifiedAfter && c.modifiedAt < only.modifiedAfter) continue;
    found.push(c);
  }
  const rows = await instances.rows(found.flatMap((c) => (c.writer ? [c.writer] : [])));
  return found.flatMap((c) => {
    const reason = verdict(c, instances, rows, graceMs, now);
    return reason ? [{ ...c, reason }] : [];
  });
}

/**
 * Removes a leftover, judged again first (it may have been written to, or removed, since it was
 * found). False when it is no longer a leftover.
 */
export async function removeLeftover(leftover: Leftover, instances: Instances, graceMs: number, now = new Date()): Promise<boolean> {
  const size = leftover.kind === 'temp' ? await fsp.stat(leftover.path).then((s) => ({ bytes: s.size, modifiedAt: s.mtime }), () => undefined) : await measure(leftover.path);
  if (!size) return false;
  const rows = await instances.rows(leftover.writer ? [leftover.writer] : []);
  if (!verdict({ ...leftover, ...size }, instances, rows, graceMs, now)) return false;
  await fsp.rm(leftover.path, { recursive: true, force: true });
  return true;
}

/** Removes every leftover in `places`, logging each; returns how many. */
export async function sweepLeftoverFiles(deps: { places: ScratchPlaces; instances: Instances; log: Logger }, graceMs: number, now = new Date()): Promise<number> {
  let removed = 0;
  for (const leftover of await findLeftovers(deps.places, deps.instances, graceMs, now)) {
    try {
      if (!(await removeLeftover(leftover, deps.instances, graceMs, now))) continue;
      removed++;
      deps.log.info(
        { event: 'leftover_removed', kind: leftover.kind, path: leftover.path, bytes: leftover.bytes, writer: leftover.writer },
        `removed a ${leftover.kind === 'temp' ? 'temp file' : 'source copy'} left behind: ${leftover.reason}`,
      );
    } catch (err) {
      deps.log.warn({ err, path: leftover.path }, 'could not remove a leftover; will retry');
    }
  }
  return removed;
}
