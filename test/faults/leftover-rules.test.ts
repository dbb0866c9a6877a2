import fsp from 'node:fs/promises';
import path from 'node:path';
import { allRecords, buildTestApp, type TestApp } from '../helpers/app';
import { CATALOG_DATABASES, useCatalogDatabase } from '../helpers/postgres';
import { newInstance, writerOf } from '../../src/instance';
import { SILENT_AFTER_MS } from '../../src/catalog/instances';
import { sweepLeftovers } from '../../src/sweeper';
import { FileSystemStore } from '../../src/storage/filesystem';
import { listFilesDeep, makeTempDir } from '../helpers/tmp';

/**
 * The rules the leftover sweep judges by, with processes on "other hosts" simulated by their
 * rows in the catalog (one catalog, several hosts: PostgreSQL). What a process known to be gone
 * left goes at once; what a silent one (no heartbeat lately) or an unnamed one left goes once
 * idle for the grace period; what a live one writes is never touched, however old.
 */

const HOUR = 3600_000;
const GRACE = HOUR;

describe.each(CATALOG_DATABASES)('the leftover sweep (catalog on %s)', (kind) => {
  const database = useCatalogDatabase(kind);
  let t: TestApp;
  beforeEach(async () => {
    t = await buildTestApp(await database.env());
  });
  afterEach(() => t?.close());

  const now = () => new Date();
  const ago = (ms: number) => new Date(Date.now() - ms);
  /** Another process's row: on another host (its pid can't be checked from here), last heard from `lastSeen`. */
  async function otherInstance(lastSeen: Date): Promise<string> {
    const id = newInstance('elsewhere').id.replace(/\.\d+\./, '.4242.');
    await t.db.insertInto('instances').values({ id, host: 'elsewhere|boot|ns', pid: 4242, started_at: ago(2 * HOUR).toISOString(), last_seen: lastSeen.toISOString() }).execute();
    return id;
  }
  let n = 0;
  async function pendingUpload(writer: string | null, idle: number, extra: { expires_at?: string } = {}): Promise<string> {
    const id = `${(++n).toString(16).padStart(2, '0')}`.repeat(16);
    await t.catalog.createPending(
      { id, owner: 'alice', originalName: `${id}.bin`, name: `${id}.bin`, contentType: 'application/octet-stream', store: 'volume', key: `${id.slice(0, 2)}/${id}` },
      { upload_instance: writer, ...extra },
    );
    await t.db.updateTable('files').set({ created_at: ago(idle).toISOString(), updated_at: ago(idle).toISOString() }).where('id', '=', id).execute();
    return id;
  }
  const sweep = () => sweepLeftovers({ files: t.files, stores: t.stores, instances: t.resources.instances, places: t.resources.scratch.places, log: t.logs.log, graceMs: GRACE }, now());
  const pendingIds = async () => (await allRecords(t.db)).filter((r) => r.status === 'pending').map((r) => r.id).sort();

  it('pending uploads: a gone writer\'s at once, a silent one\'s and an unrecorded one\'s after the grace period, a live one\'s never', async () => {
    const live = await otherInstance(now());
    const silent = await otherInstance(ago(SILENT_AFTER_MS + 60_000));
    const keep = [
      await pendingUpload(live, 3 * HOUR), // a slow upload on a live instance elsewhere
      await pendingUpload(silent, 10 * 60_000), // silent, but not idle for long
      await pendingUpload(null, 10 * 60_000), // unrecorded writer, recent
      await pendingUpload(t.resources.instances.self.id, 3 * HOUR), // this process's own
      await pendingUpload(`${'gone'}.1.00000000`, 3 * HOUR, { expires_at: ago(-HOUR).toISOString() }), // a direct upload: swept by expiry only
    ];
    const discard = [
      await pendingUpload('gone.1.00000000', 0), // no row: gone, however young
      await pendingUpload(silent, 2 * HOUR),
      await pendingUpload(null, 2 * HOUR),
    ];
    // A blob the gone writer had finished writing goes with its record.
    const blob = path.join(t.config.storage.path, discard[0].slice(0, 2), discard[0]);
    await fsp.mkdir(path.dirname(blob), { recursive: true });
    await fsp.writeFile(blob, 'written before the crash');

    const counts = await sweep();
    expect(counts.interruptedUploads).toBe(3);
    expect(await pendingIds()).toEqual([...keep].sort());
    await expect(fsp.stat(blob)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(t.logs.lines.filter((l) => l.event === 'interrupted_upload').map((l) => l.fileId).sort()).toEqual([...discard].sort());
  });

  it('temp files and work directories: by their writer, the same way; this process\'s and live ones\' stay', async () => {
    const live = await otherInstance(now());
    const silent = await otherInstance(ago(SILENT_AFTER_MS + 60_000));
    const tempDir = path.join(t.config.storage.path, '.tmp');
    const workRoot = t.config.scratch.workRoot;
    await fsp.mkdir(workRoot, { recursive: true });
    async function write(file: string, age: number, dir = false) {
      const target = dir ? path.join(file, 'source-abc', 'upload') : file;
      await fsp.mkdir(path.dirname(target), { recursive: true });
      await fsp.writeFile(target, 'x'.repeat(1000));
      const when = ago(age);
      for (const p of dir ? [target, path.dirname(target), file] : [file]) await fsp.utimes(p, when, when);
      return path.relative(t.dir, file);
    }
    const self = t.resources.instances.self.id;
    // Named after this host and a pid that runs here, but not in this catalog: another service
    // sharing TMPDIR (here the test's own pid stands for its process).
    const neighbour = self.replace(/\.\d+\.[0-9a-f]{8}$/, `.${process.pid}.0badc0de`);
    const keep = [
      await write(path.join(workRoot, neighbour), 10 * 60_000, true),
      await write(path.join(tempDir, `${live}.aaaa.part`), 3 * HOUR),
      await write(path.join(tempDir, `${silent}.bbbb.part`), 10 * 60_000),
      await write(path.join(tempDir, `${self}.cccc.part`), 3 * HOUR),
      await write(path.join(tempDir, 'legacy-fresh.part'), 10 * 60_000),
      await write(path.join(workRoot, live), 3 * HOUR, true),
    ];
    const removed = [
      await write(path.join(tempDir, 'gone.1.00000000.dddd.part'), 0),
      await write(path.join(tempDir, `${silent}.eeee.part`), 2 * HOUR),
      await write(path.join(tempDir, 'legacy-old.part'), 2 * HOUR),
      await write(path.join(workRoot, 'gone.2.00000000'), 0, true),
      await write(path.join(workRoot, self.replace(/\.\d+\.[0-9a-f]{8}$/, '.9999999.00000000')), 0, true),
      await write(path.join(t.config.scratch.tmpRoot, 'stowage-source-XYZ'), 2 * HOUR, true),
    ];
    const counts = await sweep();
    expect(counts.leftoverFiles).toBe(removed.length);
    const left = await listFilesDeep(t.dir);
    for (const k of keep) expect(left.some((f) => f === k || f.startsWith(`${k}${path.sep}`))).toBe(true);
    for (const r of removed) expect(left.some((f) => f === r || f.startsWith(`${r}${path.sep}`))).toBe(false);
  });

  it('forgets processes that are gone or long silent, keeps live ones', async () => {
    const live = await otherInstance(now());
    const silent = await otherInstance(ago(SILENT_AFTER_MS + 60_000));
    const longSilent = await otherInstance(ago(2 * HOUR));
    await sweep();
    const ids = (await t.db.selectFrom('instances').select('id').execute()).map((r) => r.id).sort();
    expect(ids).toEqual([live, silent, t.resources.instances.self.id].sort());
    expect(ids).not.toContain(longSilent);
  });
});

describe('instance identity', () => {
  it('names temp files after the process, and the name says who wrote it', async () => {
    const me = newInstance('web.1');
    expect(me.id).toMatch(/^web_1\.\d+\.[0-9a-f]{8}$/);
    expect(writerOf(`${me.id}.7d3c2a90-1111-2222-3333-444455556666.part`)).toBe(me.id);
    expect(writerOf(me.id)).toBe(me.id);
    expect(writerOf('7d3c2a90-1111-2222-3333-444455556666.part')).toBeUndefined();
    expect(writerOf('probe-7d3c2a90')).toBeUndefined();

    const dir = await makeTempDir();
    try {
      const store = new FileSystemStore('volume', dir, { instance: me.id });
      await store.prepare();
      // A write in progress: its temp file carries the writer's name.
      const { PassThrough } = await import('node:stream');
      const body = new PassThrough();
      const put = store.put('ab/cd', body);
      body.write('partial');
      const seen = await (async () => {
        for (let i = 0; i < 100; i++) {
          const names = await fsp.readdir(path.join(dir, '.tmp'));
          if (names.length) return names;
          await new Promise((r) => setTimeout(r, 10));
        }
        return [];
      })();
      expect(seen.map(writerOf)).toEqual([me.id]);
      body.end();
      await put;
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });

  it('start-up leaves temp files alone: only the sweep can tell a crashed write from another instance\'s live one', async () => {
    const dir = await makeTempDir();
    const store = new FileSystemStore('volume', dir);
    await store.prepare();
    const old = path.join(dir, '.tmp', 'someone.123.0abc1234.x.part');
    await fsp.writeFile(old, 'x');
    const twoHoursAgo = new Date(Date.now() - 2 * HOUR);
    await fsp.utimes(old, twoHoursAgo, twoHoursAgo);
    await store.prepare();
    expect(await listFilesDeep(dir)).toEqual(['.tmp/someone.123.0abc1234.x.part']);
    await fsp.rm(dir, { recursive: true, force: true });
  });
});
