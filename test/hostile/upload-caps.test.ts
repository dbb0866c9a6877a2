import http from 'node:http';
import { allRecords, buildTestApp, type TestApp } from '../helpers/app';
import { randomData } from '../helpers/streams';
import { closeServer, listen, oneFileForm, partHead, RawClient, uploadHead, within } from './raw';

/** Uploads in flight are capped per client address (UPLOADS_PER_CLIENT) and in all (UPLOADS_MAX). */
let t: TestApp;
let server: http.Server;
let port: number;
let token: string;
const clients: RawClient[] = [];

beforeEach(async () => {
  t = await buildTestApp({ UPLOADS_PER_CLIENT: '2', UPLOADS_MAX: '3' });
  server = http.createServer(t.app);
  port = await listen(server);
  token = await t.key('anonymous');
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await closeServer(server);
  await t.close();
});

/** An upload from `address` that sends part of a file and then holds the connection open. */
async function stalledUpload(address: string): Promise<RawClient> {
  const client = new RawClient(port, { localAddress: address });
  clients.push(client);
  await client.write(uploadHead(token, 1024 * 1024 * 1024));
  await client.write(Buffer.concat([partHead(`held-from-${address}.bin`), randomData(64 * 1024)]));
  return client;
}

async function pendingCount(n: number) {
  for (;;) {
    const records = await allRecords(t.db);
    if (records.length >= n) return records.length;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Only the request head: a refusal must come before the body is read. */
async function headOnly(address: string) {
  const client = new RawClient(port, { localAddress: address });
  clients.push(client);
  await client.write(uploadHead(token, 1024 * 1024 * 1024));
  return within(3000, `an answer to the upload from ${address}`, client.response);
}

it('answers 503 busy with Retry-After beyond the per-client and total caps, before reading the body, and takes uploads again once slots free up', async () => {
  await stalledUpload('127.0.0.1');
  await stalledUpload('127.0.0.1');
  await within(3000, 'two pending uploads', pendingCount(2));

  const third = await headOnly('127.0.0.1');
  expect(third).toMatchObject({ status: 503, headers: { 'retry-after': '1', connection: 'close' } });
  expect(JSON.parse(third!.body).error).toMatchObject({ code: 'busy', message: expect.stringContaining('UPLOADS_PER_CLIENT') });

  // Another address still has room, until the total is reached.
  const other = await stalledUpload('127.0.0.2');
  await within(3000, 'three pending uploads', pendingCount(3));
  const beyondTotal = await headOnly('127.0.0.3');
  expect(beyondTotal).toMatchObject({ status: 503, headers: { 'retry-after': '1' } });
  expect(JSON.parse(beyondTotal!.body).error).toMatchObject({ code: 'busy', message: expect.stringContaining('UPLOADS_MAX') });
  expect(await allRecords(t.db)).toHaveLength(3);

  // A client that gives up frees its slot once its upload is cleaned up.
  other.destroy();
  await t.logs.waitFor((l) => l.msg === 'upload failed' && l.outcome === 'failed' && l.code !== 'busy');
  const form = oneFileForm('after.txt', Buffer.from('room again'));
  const again = new RawClient(port, { localAddress: '127.0.0.3' });
  clients.push(again);
  await again.write(uploadHead(token, form.length));
  await again.write(form);
  expect((await within(3000, 'the upload after a slot freed up', again.response))?.status).toBe(201);
});

it('a refused upload leaves nothing and counts in the upload metrics as busy', async () => {
  await stalledUpload('127.0.0.1');
  await stalledUpload('127.0.0.1');
  await within(3000, 'two pending uploads', pendingCount(2));
  expect((await headOnly('127.0.0.1'))?.status).toBe(503);
  expect(await allRecords(t.db)).toHaveLength(2);
  const metrics = await t.withToken(await t.key('ops', 'service')).get('/metrics');
  expect(metrics.text).toMatch(/outcome="busy"/);
});
