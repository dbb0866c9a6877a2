import fsp from 'node:fs/promises';
import path from 'node:path';
import { allRecords, buildTestApp, type TestApp } from '../helpers/app';
import { CAN_MOUNT, mountSmallDisk, type SmallDisk } from '../helpers/tmpfs';
import { createWorker } from '../../src/resources';
import { toAppError } from '../../src/http/errors';
import { outcomeOf } from '../../src/metrics/outcome';
import type { Worker } from '../../src/tasks/worker';
import { randomData } from '../helpers/streams';
import { makeTempDir } from '../helpers/tmp';

/**
 * A full volume with the catalog on it (the default layout: STORAGE_PATH and stowage.db on one
 * disk), on a small tmpfs mounted by the test: uploads and reports answer 507
 * insufficient_storage, leave nothing half-written, and work again once space is freed. A report
 * whose output finds the disk full fails once, as insufficient_storage.
 */

const describeAsRoot = CAN_MOUNT ? describe : describe.skip;
if (!CAN_MOUNT) console.warn('not root: the full-disk tests (which mount a tmpfs) are skipped');

describeAsRoot('a full disk', () => {
  let disk: SmallDisk;
  let t: TestApp;
  let worker: Worker | undefined;
  beforeEach(async () => {
    disk = await mountSmallDisk('24m');
    t = await buildTestApp({ TASK_MAX_ATTEMPTS: '3' }, disk.dir);
    expect(t.config.databasePath).toBe(path.join(disk.dir, 'stowage.db'));
  });
  afterEach(async () => {
    // Whatever failed, the disk is unmounted: a failing test must not leave mounts behind.
    try {
      await worker?.stop(1000);
    } finally {
      worker = undefined;
      try {
        await t?.close();
      } finally {
        await disk.unmount();
      }
    }
  });

  const upload = (data: Buffer, name = 'data.bin') => t.http('alice').post('/v1/files').attach('file', data, name);
  const report = (rows: Record<string, string>[]) =>
    t.http('alice').post('/v1/reports').send({ format: 'csv', title: 'Big', columns: [{ key: 'a', header: 'A', type: 'string' }], rows });
  const tempFiles = async () => fsp.readdir(path.join(t.config.storage.path, '.tmp')).catch(() => []);
  const pending = async () => (await allRecords(t.db)).filter((r) => r.status !== 'ready');

  async function settled(taskId: string) {
    for (let i = 0; i < 300; i++) {
      const res = await t.http('alice').get(`/v1/tasks/${taskId}`);
      if (res.body.status === 'failed' || res.body.status === 'succeeded') return res.body;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error('the task never finished');
  }

  it('an upload that cannot even be recorded (SQLite: database or disk is full) answers 507, as does a report; both work once space is freed', async () => {
    expect((await upload(randomData(10_000), 'first.bin')).status).toBe(201);
    await disk.fill(0);

    const refused = await upload(randomData(100_000));
    expect(refused.status).toBe(507);
    expect(refused.body.error).toMatchObject({ code: 'insufficient_storage' });
    const queued = await report([{ a: 'x' }]);
    expect(queued.status).toBe(507);
    expect(queued.body.error).toMatchObject({ code: 'insufficient_storage' });
    expect(await pending()).toEqual([]);
    expect(await tempFiles()).toEqual([]);

    await disk.empty();
    const data = randomData(100_000);
    const stored = await upload(data, 'after.bin');
    expect(stored.status).toBe(201);
    const content = await t.http('alice').get(`/v1/files/${stored.body.files[0].id}/content`).buffer(true);
    expect(Buffer.compare(content.body as Buffer, data)).toBe(0);
    expect((await report([{ a: 'x' }])).status).toBe(202);
  });

  it('an upload whose bytes do not fit answers 507 and leaves no pending record and no temp file', async () => {
    await disk.fill(256 * 1024);
    const refused = await upload(randomData(2 * 1024 * 1024));
    expect(refused.status).toBe(507);
    expect(refused.body.error).toMatchObject({ code: 'insufficient_storage' });
    expect(await pending()).toEqual([]);
    expect(await tempFiles()).toEqual([]);
    await disk.empty();
    expect((await upload(randomData(2 * 1024 * 1024))).status).toBe(201);
  });

  it('a report whose output does not fit fails once, as insufficient_storage, leaving nothing; the same report succeeds once space is freed', async () => {
    // The source copy goes to TMPDIR, another disk here: it is the output that finds the volume full.
    const scratch = await makeTempDir('stowage-scratch-');
    await t.close();
    t = await buildTestApp({ TMPDIR: scratch }, disk.dir);
    try {
      // About 1.2 MB of CSV in, as much out, with about 200 KB free once the task is queued.
      const csv = ['a', ...Array.from({ length: 40 }, (_, i) => `${i}`.padEnd(30_000, 'x'))].join('\n');
      const source = await upload(Buffer.from(csv), 'big.csv');
      expect(source.status).toBe(201);
      const sourceReport = () => t.http('alice').post('/v1/reports').send({ format: 'csv', title: 'Big', source: { fileId: source.body.files[0].id } });
      const queued = await sourceReport();
      expect(queued.status).toBe(202);
      await disk.fill(200 * 1024);
      worker = createWorker(t.resources, t.config, t.logs.log, 1);
      worker!.start();
      const task = await settled(queued.body.id);
      expect(task).toMatchObject({ status: 'failed', attempts: 1, error: { code: 'insufficient_storage' } });
      expect(task.error.message).toMatch(/space/i);
      expect(await pending()).toEqual([]);
      expect(await tempFiles()).toEqual([]);

      await disk.empty();
      const again = await sourceReport();
      expect(await settled(again.body.id)).toMatchObject({ status: 'succeeded' });
    } finally {
      await fsp.rm(scratch, { recursive: true, force: true });
    }
  });
});

describe('the one error mapping for a full disk', () => {
  const limits = { maxBytes: 1, maxFiles: 1 };
  it.each([
    ['SQLite', Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' })],
    ['PostgreSQL', Object.assign(new Error('could not extend file "base/16384/16385": No space left on device'), { code: '53100' })],
    ['a temp file', Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28 })],
    ['a quota', Object.assign(new Error('EDQUOT: disk quota exceeded'), { code: 'EDQUOT' })],
    ['a wrapped cause', new Error('Database migration failed', { cause: Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' }) })],
  ])('%s is 507 insufficient_storage, counted as such', (_what, err) => {
    expect(toAppError(err, limits)).toMatchObject({ status: 507, code: 'insufficient_storage' });
    expect(outcomeOf(err)).toBe('insufficient_storage');
  });

  it('other database errors stay internal errors', () => {
    expect(toAppError(Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' }), limits)).toMatchObject({ status: 500, code: 'internal_error' });
  });
});
