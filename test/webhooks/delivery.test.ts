import { buildTestApp, type TestApp } from '../helpers/app';
import type { Worker } from '../../src/tasks/worker';
import { deliveriesWhen, Receiver, testSecret } from './receiver';

/** How one attempt treats what an endpoint does: redirects, silence, endless answers. */
let t: TestApp | undefined;
let worker: Worker | undefined;
let r: Receiver;

beforeEach(async () => {
  r = new Receiver(testSecret('c'));
  await r.start();
  t = await buildTestApp({ WEBHOOK_URL: r.url, WEBHOOK_SECRET: r.secret, WEBHOOK_RETRY_DELAY: '20ms', WEBHOOK_TIMEOUT: '300ms' });
  worker = t.startTaskWorker();
});

afterEach(async () => {
  await worker?.stop(0);
  await t?.close();
  await r.stop();
});

async function upload(): Promise<string> {
  const res = await t!.http('alice').post('/v1/files').attach('file', Buffer.from('bytes'), 'f.txt');
  expect(res.status).toBe(201);
  return res.body.files[0].id as string;
}

const attempts = () => t!.logs.lines.filter((l) => l.event === 'webhook.attempt');

it('does not follow a redirect: the attempt fails and the event is sent again to the configured URL', async () => {
  r.answers.push((_req, res) => res.writeHead(302, { Location: `http://127.0.0.1:${r.port}/elsewhere` }).end());
  await upload();
  await r.waitForEvents(1);
  expect(r.attempts.map((a) => a.path)).toEqual(['/hooks', '/hooks']);
  expect(attempts()[0]).toEqual(expect.objectContaining({ outcome: 'failed', problem: 'The endpoint answered HTTP 302 (redirects are not followed).' }));
});

it('gives up on an endpoint that does not answer within WEBHOOK_TIMEOUT, and tries again', async () => {
  r.answers.push(() => undefined);
  await upload();
  await t!.logs.waitFor((l) => l.event === 'webhook.attempt' && l.outcome === 'delivered');
  expect(r.events).toHaveLength(1);
  expect(attempts().map((l) => [l.outcome, l.problem])).toEqual([
    ['failed', 'No answer within 0.3 s (WEBHOOK_TIMEOUT).'],
    ['delivered', undefined],
  ]);
});

it('reads at most 64 KiB of an answer: an endless 200 still delivers the event, once', async () => {
  let written = 0;
  r.answers.push((_req, res) => {
    res.writeHead(200);
    const chunk = Buffer.alloc(16 * 1024, 'x');
    const pump = () => {
      while (!res.destroyed && res.write(chunk)) written += chunk.length;
    };
    res.on('drain', pump);
    pump();
  });
  await upload();
  const [delivery] = await deliveriesWhen(t!, 'alice', (ds) => ds.length === 1 && ds[0].status !== 'pending');
  expect(attempts()).toEqual([expect.objectContaining({ outcome: 'delivered', status: 200 })]);
  expect(delivery).toEqual(expect.objectContaining({ status: 'delivered', attempts: 1 }));
  expect(written).toBeLessThan(8 * 1024 ** 2);
});
