import fsp from 'node:fs/promises';
import path from 'node:path';
import { applyRemedies } from '../../src/doctor/actions';
import { runChecks } from '../../src/doctor/doctor';
import { doctorDeps } from '../../src/resources';
import type { Worker } from '../../src/tasks/worker';
import { allRecords, buildTestApp, type TestApp } from '../helpers/app';
import { Receiver, testSecret } from './receiver';

/** A file the doctor marks missing is told to the owner's webhooks, like one a download finds gone. */
let t: TestApp | undefined;
let worker: Worker | undefined;
let r: Receiver;

afterEach(async () => {
  await worker?.stop(0);
  await t?.close();
  await r.stop();
});

it('doctor --fix sends file.missing for a file whose blob is gone (once), and deleting it then file.deleted', async () => {
  r = new Receiver(testSecret('d'));
  await r.start();
  t = await buildTestApp({ WEBHOOK_URL: r.url, WEBHOOK_SECRET: r.secret, WEBHOOK_RETRY_DELAY: '20ms' });
  worker = t.startTaskWorker();
  const upload = async (name: string) => (await t!.http('dave').post('/v1/files').attach('file', Buffer.from(name), name)).body.files[0].id as string;
  const gone = await upload('gone.txt');
  // The doctor refuses to act when every record it checks is missing (an unmounted store).
  await upload('kept.txt');
  const record = (await allRecords(t.db)).find((f) => f.id === gone)!;
  await fsp.rm(path.join(t.config.storage.path, ...record.key.split('/')));

  const deps = doctorDeps(t.resources, t.config, t.logs.log);
  const scope = { graceMs: 0, verify: false };
  const found = await runChecks(deps, scope);
  await applyRemedies(deps, scope, found, { fix: true, delete: false, pruneOrphans: false });
  expect(found.summary.markedMissing).toBe(1);
  await r.waitForEvents(1, (e) => e.type === 'file.missing');
  expect(r.events.find((e) => e.type === 'file.missing')!.data).toEqual(expect.objectContaining({ id: gone, owner: 'dave', name: 'gone.txt', status: 'missing' }));

  const again = await runChecks(deps, { ...scope });
  expect(again.problems).toEqual([]);
  // Deleting the missing record through the API is what the owner does next: the event says so.
  expect((await t.http('dave').delete(`/v1/files/${gone}`)).status).toBe(204);
  await r.waitForEvents(1, (e) => e.type === 'file.deleted');
  expect(r.events.filter((e) => e.type !== 'file.ready').map((e) => [e.type, e.data.id])).toEqual([
    ['file.missing', gone],
    ['file.deleted', gone],
  ]);
});
