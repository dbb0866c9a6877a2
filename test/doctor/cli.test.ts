import { once } from 'node:events';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { allRecords, buildTestApp, type TestApp } from '../helpers/app';
import { CATALOG_DATABASES, useCatalogDatabase } from '../helpers/postgres';
import { runService } from '../helpers/service';
import { randomData } from '../helpers/streams';

/**
 * `stowage doctor` run as the built CLI against a catalog built through the real HTTP API, whose
 * store was then damaged behind its back.
 */

const MISSING = 'File missing from storage. Please re-upload it.';
const DAMAGED = 'File damaged in storage. Please re-upload it.';
const TWO_HOURS_AGO = new Date(Date.now() - 2 * 60 * 60 * 1000);

let t: TestApp;
/** The damaged catalog: one record per kind of problem, plus good files that must stay. */
let files: {
  good: { id: string; data: Buffer };
  gone: { id: string; key: string };
  truncated: { id: string; key: string };
  flipped: { id: string; key: string };
  bobGood: { id: string };
  pending: { id: string; key: string };
};
const OLD_ORPHAN = 'or/orphan-old';
const FRESH_ORPHAN = 'or/orphan-fresh';

async function upload(owner: string, name: string, data: Buffer) {
  const res = await t.http(owner).post('/v1/files').attach('file', data, name);
  expect(res.status).toBe(201);
  const { id } = res.body.files[0];
  const record = (await allRecords(t.db)).find((r) => r.id === id)!;
  return { id, key: record.key, data };
}

const blobPath = (key: string) => path.join(t.config.storage.path, ...key.split('/'));


/** Runs `stowage doctor ...` against the test app's store and catalog; resolves when it has exited and its output is read. */
async function doctor(...args: string[]) {
  return doctorWith({}, ...args);
}

async function doctorWith(env: Record<string, string>, ...args: string[]) {
  const svc = runService(['doctor', ...args], {
    cwd: t.dir,
    env: {
      STORAGE: 'volume',
      STORAGE_PATH: t.config.storage.path,
      DATABASE_PATH: t.config.databasePath,
      ...(t.config.database.kind === 'postgres' && { DATABASE_URL: t.config.database.url }),
      TMPDIR: t.dir,
      LOG_LEVEL: 'info',
      ...env,
    },
  });
  const closed = once(svc.child, 'close');
  const code = await svc.exited;
  await closed;
  const stdout = svc.lines.map((l) => (typeof l.msg === 'string' && Object.keys(l).length === 1 ? l.msg : JSON.stringify(l))).join('\n');
  const logs = svc.stderr.flatMap((line) => (line.startsWith('{') ? [JSON.parse(line) as Record<string, unknown>] : []));
  return { code, stdout, json: svc.lines[0] as unknown as Report, stderr: svc.stderr, logs };
}

interface Report {
  ok: boolean;
  orphansSkipped: boolean;
  problems: { kind: string; owner?: string; fileId?: string; name?: string; key: string; store: string; reason: string }[];
  actions: { action: string; problem: { fileId?: string; key: string } }[];
  summary: Record<string, number>;
}

const statuses = async () => Object.fromEntries((await allRecords(t.db)).map((r) => [r.id, r.status]));
const exists = (key: string) => fsp.stat(blobPath(key)).then(() => true, () => false);

describe.each(CATALOG_DATABASES)('doctor (catalog on %s)', (kind) => {
  const database = useCatalogDatabase(kind);

  beforeEach(async () => {
    t = await buildTestApp(await database.env());
    const good = await upload('alice', 'keep.txt', Buffer.from('keep me\n'));
    const gone = await upload('alice', 'gone.pdf', randomData(5000));
    const truncated = await upload('alice', 'short.bin', randomData(4096));
    const flipped = await upload('bob', 'flipped.bin', randomData(4096));
    const bobGood = await upload('bob', 'fine.csv', Buffer.from('a,b\n1,2\n'));

    await fsp.rm(blobPath(gone.key));
    await fsp.truncate(blobPath(truncated.key), 1000);
    const bytes = await fsp.readFile(blobPath(flipped.key));
    bytes[100] ^= 0xff;
    bytes[2000] ^= 0xff;
    await fsp.writeFile(blobPath(flipped.key), bytes);

    for (const [key, mtime] of [
      [OLD_ORPHAN, TWO_HOURS_AGO],
      [FRESH_ORPHAN, new Date()],
    ] as const) {
      await fsp.mkdir(path.dirname(blobPath(key)), { recursive: true });
      await fsp.writeFile(blobPath(key), 'nobody points at me');
      await fsp.utimes(blobPath(key), mtime, mtime);
    }

    const pending = await t.catalog.createPending({
      id: 'f0'.repeat(16),
      owner: 'carol',
      originalName: 'halfway.mov',
      name: 'halfway.mov',
      contentType: 'video/quicktime',
      store: 'volume',
      key: `f0/${'f0'.repeat(16)}`,
    });
    await t.db.updateTable('files').set({ created_at: TWO_HOURS_AGO.toISOString(), updated_at: TWO_HOURS_AGO.toISOString() }).where('id', '=', pending.id).execute();
    files = { good, gone, truncated, flipped, bobGood, pending };
  });
  afterEach(async () => t?.close());

  describe('stowage doctor', () => {
    it('checks records on every store the server reads, not only the primary: the volume stays checked after STORAGE moves to tmp', async () => {
      const moved = await doctorWith({ STORAGE: 'tmp' }, '--json');
      const kinds = moved.json.problems.map((p) => `${p.kind} ${p.fileId ?? p.key}`).sort();
      expect(kinds).not.toContainEqual(expect.stringMatching(/^unreachable/));
      expect(kinds).toEqual(expect.arrayContaining([`missing ${files.gone.id}`, `corrupt ${files.truncated.id}`]));
      expect(moved.json.summary.recordsChecked).toBe(5);
    });

    it('reports each problem grouped by owner, in text and JSON, changes nothing and exits 1', async () => {
      const before = await allRecords(t.db);
      const text = await doctor('--verify');
      expect(text.code).toBe(1);
      const out = text.stdout;
      expect(out).toContain('5 problems found.');
      expect(out).toContain(`missing: ${files.gone.id} "gone.pdf" at volume:${files.gone.key}: the blob is not in the store`);
      expect(out).toContain(`corrupt: ${files.truncated.id} "short.bin" at volume:${files.truncated.key}: the blob has 1000 bytes, the record says 4096`);
      expect(out).toMatch(new RegExp(`corrupt: ${files.flipped.id} "flipped.bin" at volume:${files.flipped.key}: the blob's sha256 is [0-9a-f]{64}, the record says [0-9a-f]{64}`));
      expect(out).toContain(`stale pending: ${files.pending.id} "halfway.mov" at volume:${files.pending.key}: the upload started at ${TWO_HOURS_AGO.toISOString()} and never finished`);
      expect(out).toMatch(new RegExp(`orphan: blob at volume:${OLD_ORPHAN}: no record points at this blob \\(19 bytes, modified `));
      // Grouped: each owner's problems under its heading, orphans (no owner) last.
      const at = (s: string) => out.indexOf(s);
      expect(at('owner alice')).toBeLessThan(at(files.gone.id));
      expect(at(files.truncated.id)).toBeLessThan(at('owner bob'));
      expect(at('owner bob')).toBeLessThan(at(files.flipped.id));
      expect(at('owner carol')).toBeLessThan(at(files.pending.id));
      expect(at(files.pending.id)).toBeLessThan(at('no owner (blobs without a record)'));
      expect(at('no owner')).toBeLessThan(at(OLD_ORPHAN));
      // In-flight looking things and healthy files are not reported.
      expect(out).not.toContain(FRESH_ORPHAN);
      expect(out).not.toContain(files.good.id);
      expect(out).not.toContain(files.bobGood.id);
      expect(out.trim().split('\n').pop()).toBe(
        'records checked: 5, missing: 1, corrupt: 2, orphans: 1, stale pending: 1, unreachable: 0, stuck tasks: 0; marked missing: 0, marked failed: 0, deleted: 0, pruned: 0',
      );

      // Without --verify the flipped bytes (same size) go unnoticed; everything else is the same.
      const json = await doctor('--json');
      expect(json.code).toBe(1);
      expect(json.json.ok).toBe(false);
      expect(json.json.summary).toMatchObject({ recordsChecked: 5, missing: 1, corrupt: 1, orphans: 1, stalePending: 1, markedMissing: 0, markedFailed: 0, deleted: 0, pruned: 0 });
      expect(json.json.problems.map((p) => [p.kind, p.owner, p.fileId ?? p.key]).sort()).toEqual(
        [
          ['missing', 'alice', files.gone.id],
          ['corrupt', 'alice', files.truncated.id],
          ['stale_pending', 'carol', files.pending.id],
          ['orphan', undefined, OLD_ORPHAN],
        ].sort(),
      );
      // The JSON is the whole stdout: no progress bar or log lines mixed in.
      expect(json.stdout.split('\n')).toHaveLength(1);

      const bob = await doctor('--json', '--verify', '--owner', 'bob');
      expect(bob.json.problems.map((p) => [p.kind, p.fileId])).toEqual([['corrupt', files.flipped.id]]);
      expect(bob.json.orphansSkipped).toBe(true);

      expect(await allRecords(t.db)).toEqual(before);
      expect(await exists(OLD_ORPHAN)).toBe(true);
    });

    it('--fix marks gone blobs missing (as a download does) and corrupt records failed, and the API shows the message; --prune-orphans removes only old orphans; a second run exits 0', async () => {
      const fixed = await doctor('--verify', '--fix', '--prune-orphans');
      // Everything it found, it fixed: a cron job running --fix isn't told of trouble that is gone.
      expect(fixed.code).toBe(0);
      expect(fixed.stdout).toContain(`${files.gone.id} "gone.pdf" at volume:${files.gone.key}: the blob is not in the store [marked missing]`);
      expect(fixed.stdout).toContain(`orphan: blob at volume:${OLD_ORPHAN}`);
      expect(fixed.stdout.trim().split('\n').pop()).toMatch(/; marked missing: 1, marked failed: 3, deleted: 0, pruned: 1$/);
      // Every action is logged.
      const actions = fixed.logs.filter((l) => l.event === 'doctor.action').map((l) => [l.action, l.fileId ?? l.key]);
      expect(actions.sort()).toEqual(
        [
          ['marked_missing', files.gone.id],
          ['marked_failed', files.truncated.id],
          ['marked_failed', files.flipped.id],
          ['marked_failed', files.pending.id],
          ['pruned', OLD_ORPHAN],
        ].sort(),
      );

      expect(await statuses()).toEqual({
        [files.good.id]: 'ready',
        [files.gone.id]: 'missing',
        [files.truncated.id]: 'failed',
        [files.flipped.id]: 'failed',
        [files.bobGood.id]: 'ready',
        [files.pending.id]: 'failed',
      });
      const record = await t.http('alice').get(`/v1/files/${files.gone.id}`);
      expect(record.body).toMatchObject({ status: 'missing', statusMessage: MISSING });
      const content = await t.http('bob').get(`/v1/files/${files.flipped.id}/content`);
      expect(content.status).toBe(404);
      expect(content.body.error).toMatchObject({ code: 'file_missing', message: DAMAGED });
      const good = await t.http('alice').get(`/v1/files/${files.good.id}/content`);
      expect(good.status).toBe(200);
      expect(good.text).toBe('keep me\n');

      expect(await exists(OLD_ORPHAN)).toBe(false);
      expect(await exists(FRESH_ORPHAN)).toBe(true);

      const again = await doctor('--verify');
      expect(again.code).toBe(0);
      expect(again.stdout).toContain('No problems found.');
    });

    it('--delete refuses without confirmation when not on a terminal, and deletes records and blobs with --yes', async () => {
      const before = await allRecords(t.db);
      const refused = await doctor('--delete');
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain(
        'stowage doctor: --delete removes records for good: confirm with --yes when not running on a terminal. Nothing was changed.',
      );
      expect(await allRecords(t.db)).toEqual(before);

      const deleted = await doctor('--verify', '--delete', '--yes', '--prune-orphans', '--json');
      expect(deleted.code).toBe(0);
      expect(deleted.json.summary).toMatchObject({ deleted: 4, pruned: 1, markedMissing: 0, markedFailed: 0, actionErrors: 0 });
      expect(deleted.logs.filter((l) => l.event === 'doctor.action' && l.action === 'deleted')).toHaveLength(4);
      expect(Object.keys(await statuses()).sort()).toEqual([files.good.id, files.bobGood.id].sort());
      expect((await t.http('alice').get(`/v1/files/${files.truncated.id}`)).status).toBe(404);
      // Their damaged blobs went with them; the fresh orphan stays.
      expect(await exists(files.truncated.key)).toBe(false);
      expect(await exists(files.flipped.key)).toBe(false);
      expect(await exists(FRESH_ORPHAN)).toBe(true);

      const again = await doctor('--verify', '--json');
      expect(again.code).toBe(0);
      expect(again.json).toMatchObject({ ok: true, problems: [], summary: { recordsChecked: 2 } });
    });

    it('reports tasks no worker is taking: queued long ago and never started, or a lease that ran out unclaimed', async () => {
      const waiting = await t.queue.enqueue('report', 'dana', {});
      const abandoned = await t.queue.enqueue('report', 'dana', {});
      const fresh = await t.queue.enqueue('report', 'dana', {});
      const old = TWO_HOURS_AGO.toISOString();
      await t.db.updateTable('tasks').set({ run_after: old }).where('id', '=', waiting.id).execute();
      await t.db.updateTable('tasks').set({ status: 'running', worker_id: 'crashed-worker', running_until: old }).where('id', '=', abandoned.id).execute();

      const run = await doctor();
      expect(run.code).toBe(1);
      expect(run.stdout).toContain(`stuck task: task ${waiting.id} (report, queued): queued since ${old} and never started (is a worker running?`);
      expect(run.stdout).toContain(`stuck task: task ${abandoned.id} (report, running): its worker stopped renewing the lease at ${old}`);
      expect(run.stdout).not.toContain(fresh.id);
      expect(run.stdout.indexOf('owner dana')).toBeLessThan(run.stdout.indexOf(waiting.id));
      const json = await doctor('--json', '--fix');
      expect(json.json.summary).toMatchObject({ stuckTasks: 2, markedMissing: 1, markedFailed: 2 });
      // Stuck tasks are left for a worker: not fixed, so still a problem.
      expect(json.code).toBe(1);
      // Nothing to fix about a missing worker: the tasks stay for one to pick up.
      expect((await t.queue.get('dana', waiting.id))!.status).toBe('queued');
    });

    it('refuses to --fix or --delete when every record is missing, as when the volume is not mounted', async () => {
      const before = await allRecords(t.db);
      const unmounted = { STORAGE_PATH: path.join(t.dir, 'not-mounted') };
      for (const action of ['--fix', '--delete']) {
        const run = await doctorWith(unmounted, action, '--yes');
        expect(run.code).toBe(2);
        expect(run.stdout).toContain('records checked: 5, missing: 5');
        expect(run.stderr).toContain(
          `stowage doctor: every checked record is missing from ${unmounted.STORAGE_PATH}: is the storage mounted? Nothing was changed; pass --force to act anyway.`,
        );
      }
      expect(await allRecords(t.db)).toEqual(before);
    });
  });
});
