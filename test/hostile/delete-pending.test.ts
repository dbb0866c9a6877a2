import http from 'node:http';
import { allRecords, buildTestApp, type TestApp } from '../helpers/app';
import { randomData, sha256 } from '../helpers/streams';
import { closeServer, formTail, listen, partHead, RawClient, uploadHead, within } from './raw';

/** A file deleted, or its record removed, while its bytes are still arriving. */
let t: TestApp;
let server: http.Server;
let port: number;
let token: string;

beforeEach(async () => {
  t = await buildTestApp();
  server = http.createServer(t.app);
  port = await listen(server);
  token = await t.key('anonymous');
});
afterEach(async () => {
  await closeServer(server);
  await t.close();
});

/** Starts an upload of `data` with all but its last 1 KiB sent; resolves with the client, its file id and a way to finish it. */
async function uploadInProgress(data: Buffer) {
  const head = partHead('in-progress.bin');
  const tail = formTail();
  const client = new RawClient(port);
  await client.write(uploadHead(token, head.length + data.length + tail.length));
  await client.write(Buffer.concat([head, data.subarray(0, data.length - 1024)]));
  const started = await t.logs.waitFor((l) => l.msg === 'upload started');
  return {
    client,
    id: started.fileId as string,
    finish: () => client.write(Buffer.concat([data.subarray(data.length - 1024), tail])),
  };
}

it('DELETE of a file still being uploaded answers 409 file_pending, and the upload then completes intact', async () => {
  const data = randomData(512 * 1024);
  const upload = await uploadInProgress(data);

  const del = await t.http().delete(`/v1/files/${upload.id}`);
  expect(del.status).toBe(409);
  expect(del.body.error).toMatchObject({ code: 'file_pending', message: expect.stringContaining('still being uploaded') });
  expect(await allRecords(t.db)).toMatchObject([{ id: upload.id, status: 'pending' }]);

  await upload.finish();
  const res = await within(5000, 'the upload answer', upload.client.response);
  expect(res?.status).toBe(201);
  const content = await t.http().get(`/v1/files/${upload.id}/content`).buffer(true).parse((r, done) => {
    const chunks: Buffer[] = [];
    r.on('data', (c: Buffer) => chunks.push(c));
    r.on('end', () => done(null, Buffer.concat(chunks)));
  });
  expect(sha256(content.body as Buffer)).toBe(sha256(data));
  // Once ready, it can be deleted.
  expect((await t.http().delete(`/v1/files/${upload.id}`)).status).toBe(204);
});

it('the page\'s delete form answers the same refusal for a pending file', async () => {
  const upload = await uploadInProgress(randomData(256 * 1024));
  const del = await t.http().post(`/delete/${upload.id}`).set('Origin', 'http://127.0.0.1').set('Sec-Fetch-Site', 'same-origin');
  expect(del.status).toBe(409);
  expect(await allRecords(t.db)).toMatchObject([{ id: upload.id, status: 'pending' }]);
  upload.client.destroy();
});

it('an upload whose record was removed meanwhile (the doctor, an operator) answers a clean 409 and leaves no blob', async () => {
  const upload = await uploadInProgress(randomData(512 * 1024));
  await t.catalog.discardPending(upload.id);

  await upload.finish();
  const res = await within(5000, 'the upload answer', upload.client.response);
  expect(res?.status).toBe(409);
  expect(JSON.parse(res!.body).error).toMatchObject({ code: 'upload_cancelled' });
  expect(await allRecords(t.db)).toEqual([]);
  expect(await t.storedFiles()).toEqual([]);
});
