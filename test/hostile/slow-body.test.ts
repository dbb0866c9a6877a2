import http from 'node:http';
import { allRecords, buildTestApp, type TestApp } from '../helpers/app';
import { randomData } from '../helpers/streams';
import { closeServer, formTail, listen, oneFileForm, partHead, RawClient, uploadHead, within } from './raw';

/**
 * Bodies that stop arriving. The app is built with BODY_IDLE_TIMEOUT=1s (and REQUEST_TIMEOUT=2s for
 * bodies other than uploads), so each of these waits about a second, no more.
 */
let t: TestApp;
let server: http.Server;
let port: number;
let token: string;

beforeEach(async () => {
  t = await buildTestApp({ BODY_IDLE_TIMEOUT: '1s', REQUEST_TIMEOUT: '2s' });
  server = http.createServer(t.app);
  port = await listen(server);
  token = await t.key('anonymous');
});
afterEach(async () => {
  await closeServer(server);
  await t.close();
});

async function expectNothingLeft() {
  expect(await allRecords(t.db)).toEqual([]);
  expect(await t.storedFiles()).toEqual([]);
}

it('an upload whose body stops arriving is answered 408 body_timeout after BODY_IDLE_TIMEOUT, leaving no record and no temp file', async () => {
  const client = new RawClient(port);
  await client.write(uploadHead(token, 10 * 1024 * 1024));
  await client.write(partHead('stalled.bin'));
  await client.write(randomData(256 * 1024));
  await t.logs.waitFor((l) => l.msg === 'upload started');
  expect(await allRecords(t.db)).toMatchObject([{ status: 'pending' }]);
  const stalledAt = Date.now();

  const res = await within(5000, 'an answer to the stalled upload', client.response);
  expect(Date.now() - stalledAt).toBeGreaterThanOrEqual(900);
  expect(res).toMatchObject({ status: 408, headers: { connection: 'close' } });
  expect(JSON.parse(res!.body).error).toMatchObject({ code: 'body_timeout', message: expect.stringContaining('BODY_IDLE_TIMEOUT') });
  // Answered once everything was cleaned up; the connection goes too.
  await expectNothingLeft();
  await within(2000, 'the connection closing', client.closed);
  expect(await t.logs.waitFor((l) => l.msg === 'upload failed')).toMatchObject({ outcome: 'failed', code: 'body_timeout' });
});

it('a Content-Length longer than the body times out the same way instead of hanging, and the complete file it carried is discarded', async () => {
  const form = oneFileForm('short.txt', Buffer.from('every byte of the file is here'));
  const client = new RawClient(port);
  await client.write(uploadHead(token, form.length + 100));
  await client.write(form);

  const res = await within(5000, 'an answer to the short body', client.response);
  expect(res?.status).toBe(408);
  expect(JSON.parse(res!.body).error.code).toBe('body_timeout');
  await expectNothingLeft();
});

it('a file part stalled after an earlier file was stored completely leaves neither', async () => {
  const first = oneFileForm('first.txt', Buffer.from('complete')).subarray(0, -formTail().length);
  const client = new RawClient(port);
  await client.write(uploadHead(token, 10 * 1024 * 1024));
  await client.write(Buffer.concat([first, Buffer.from('\r\n'), partHead('second.bin'), randomData(1024)]));
  const res = await within(5000, 'an answer to the stalled second part', client.response);
  expect(res?.status).toBe(408);
  await expectNothingLeft();
});

it('a slow but steady body is not timed out: only a silence of BODY_IDLE_TIMEOUT is', async () => {
  const data = randomData(8);
  const form = oneFileForm('trickle.bin', data);
  const client = new RawClient(port);
  await client.write(uploadHead(token, form.length));
  const head = form.subarray(0, form.length - data.length - formTail().length);
  await client.write(head);
  // One byte every 250 ms: 2 s in all, twice the idle timeout, never idle for one.
  for (const byte of data) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    await client.write(Buffer.from([byte]));
  }
  await client.write(formTail());
  const res = await within(5000, 'an answer to the steady upload', client.response);
  expect(res?.status).toBe(201);
  expect(JSON.parse(res!.body).files[0]).toMatchObject({ name: 'trickle.bin', size: 8 });
  client.destroy();
});

it('a JSON body that stops arriving is cut off after BODY_IDLE_TIMEOUT', async () => {
  const client = new RawClient(port);
  const started = Date.now();
  await client.write(
    `POST /v1/reports HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"title":`,
  );
  await within(4000, 'the stalled JSON body being cut off', client.closed);
  expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  expect(await t.logs.waitFor((l) => (l.err as { code?: string } | undefined)?.code === 'body_timeout' || l.code === 'body_timeout')).toBeTruthy();
});

it('a body other than an upload that trickles in never idle still ends at REQUEST_TIMEOUT', async () => {
  const client = new RawClient(port);
  const started = Date.now();
  await client.write(
    `POST /v1/reports HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{`,
  );
  let closed = false;
  void client.closed.then(() => (closed = true));
  while (!closed && Date.now() - started < 5000) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    await client.write(' ');
  }
  expect(closed).toBe(true);
  expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
  expect(Date.now() - started).toBeLessThan(4000);
});
