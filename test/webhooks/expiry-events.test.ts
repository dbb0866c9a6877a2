import { sweepExpired } from '../../src/expiry/sweeper';
import { expirySweepDeps } from '../../src/resources';
import type { Worker } from '../../src/tasks/worker';
import { buildTestApp, type TestApp } from '../helpers/app';
import { Receiver, testSecret } from './receiver';

/** The expiry sweep tells the owner's webhooks of each file it expires, once, and not as a delete. */
let t: TestApp | undefined;
let worker: Worker | undefined;
let r: Receiver;

afterEach(async () => {
  await worker?.stop(0);
  await t?.close();
  await r.stop();
});

it('sends file.expired (and no file.deleted) for a file the sweep expires and removes', async () => {
  r = new Receiver(testSecret('e'));
  await r.start();
  t = await buildTestApp({ WEBHOOK_URL: r.url, WEBHOOK_SECRET: r.secret, WEBHOOK_RETRY_DELAY: '20ms' });
  worker = t.startTaskWorker();
  const res = await t.http('erin').post('/v1/files').set('Stowage-Expires-In', '60s').attach('file', Buffer.from('short-lived'), 'short.txt');
  expect(res.status).toBe(201);
  const id = res.body.files[0].id as string;
  await r.waitForEvents(1, (e) => e.type === 'file.ready');

  // As the sweep a minute later: the file expires, then its blob and record go.
  const later = new Date(Date.now() + 120_000);
  expect(await sweepExpired(expirySweepDeps(t.resources, t.config, t.logs.log), later)).toMatchObject({ expired: 1, removed: 1 });
  await r.waitForEvents(1, (e) => e.type === 'file.expired');
  expect(r.events.find((e) => e.type === 'file.expired')!.data).toEqual(expect.objectContaining({ id, owner: 'erin', name: 'short.txt', status: 'expired' }));

  await t.http('erin').post('/v1/files').attach('file', Buffer.from('sentinel'), 'sentinel.txt');
  await r.waitForEvents(1, (e) => e.type === 'file.ready' && e.data.name === 'sentinel.txt');
  expect(r.events.map((e) => e.type)).toEqual(['file.ready', 'file.expired', 'file.ready']);
});
