import { sweepExpired } from '../../src/expiry/sweeper';
import { expirySweepDeps } from '../../src/resources';
import { allRecords, buildTestApp, type TestApp } from '../helpers/app';
import { startPostgres, type PostgresServer } from '../helpers/postgres';

let pg: PostgresServer;
let a: TestApp;
let b: TestApp;
beforeAll(async () => {
  pg = await startPostgres();
});
afterAll(() => pg.stop());
afterEach(async () => {
  await a?.close();
  await b?.close();
});

it('two instances on one PostgreSQL never sweep at once: the second finds the first sweeping and does nothing', async () => {
  const env = { DATABASE_URL: await pg.createDatabase() };
  a = await buildTestApp(env);
  b = await buildTestApp(env);
  for (let i = 0; i < 3; i++) await a.http().post('/v1/files').attach('file', Buffer.from(`file ${i}`), `f${i}.txt`);
  await a.db.updateTable('files').set({ delete_at: '2020-01-01T00:00:00.000Z' }).execute();

  // A's sweep stops inside its transaction until released: B comes while A holds the lock.
  let release!: () => void;
  let entered!: () => void;
  const inside = new Promise<void>((resolve) => (entered = resolve));
  const hold = new Promise<void>((resolve) => (release = resolve));
  const first = sweepExpired(
    expirySweepDeps(a.resources, a.config, a.logs.log, {
      onExpired: async () => {
        entered();
        await hold;
      },
    }),
  );
  await inside;
  const second = await sweepExpired(expirySweepDeps(b.resources, b.config, b.logs.log));
  expect(second).toEqual({ swept: false, expired: 0, removed: 0, failed: 0 });
  expect(await allRecords(b.db)).toHaveLength(3);
  release();
  expect(await first).toEqual({ swept: true, expired: 3, removed: 3, failed: 0 });
  expect(await allRecords(a.db)).toEqual([]);
  // The lock is free again: B sweeps (nothing left).
  expect(await sweepExpired(expirySweepDeps(b.resources, b.config, b.logs.log))).toMatchObject({ swept: true });
});
