import http from 'node:http';
import { allRecords, buildTestApp, type TestApp } from '../helpers/app';
import { randomData } from '../helpers/streams';
import { BOUNDARY, closeServer, formTail, listen, oneFileForm, partHead, RawClient, uploadHead, within } from './raw';

/**
 * Malformed multipart bodies against the real upload route: each gets a 4xx in the one error
 * shape (or, when HTTP itself is broken, a closed connection), and leaves no record and no blob.
 */
let t: TestApp;
let server: http.Server;
let port: number;
let token: string;

beforeEach(async () => {
  t = await buildTestApp({ BODY_IDLE_TIMEOUT: '1s' });
  server = http.createServer(t.app);
  port = await listen(server);
  token = await t.key('anonymous');
});
afterEach(async () => {
  // Every refusal is answered (or the connection closed) once the upload's cleanup is done.
  await t.logs.waitFor((l) => l.msg === 'upload failed');
  expect(await allRecords(t.db)).toEqual([]);
  expect(await t.storedFiles()).toEqual([]);
  await closeServer(server);
  await t.close();
});

const file = randomData(200 * 1024);
const firstPart = oneFileForm('first.bin', file).subarray(0, -formTail().length);

/** Sends `body` as a multipart upload announcing its true length; resolves with the answer. */
async function send(body: Buffer, contentType = `multipart/form-data; boundary=${BOUNDARY}`) {
  const client = new RawClient(port);
  await client.write(
    `POST /v1/files HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Type: ${contentType}\r\nContent-Length: ${body.length}\r\n\r\n`,
  );
  await client.write(body);
  const res = await within(5000, 'an answer', client.response);
  client.destroy();
  return { status: res?.status, code: res && res.body ? (JSON.parse(res.body) as { error?: { code: string } }).error?.code : undefined };
}

it.each<[string, () => Buffer, string?, number?, string?]>([
  ['no boundary parameter', () => oneFileForm('a.txt', file), 'multipart/form-data', 400, 'malformed_multipart'],
  ['a boundary the body never uses', () => oneFileForm('a.txt', file), 'multipart/form-data; boundary=something-else', 400, 'malformed_multipart'],
  ['the body ends inside the file, without the closing boundary', () => Buffer.concat([partHead('cut.bin'), file.subarray(0, 1000)]), undefined, 400, 'malformed_multipart'],
  ['the body ends after a complete file, before the second one ends', () => Buffer.concat([firstPart, Buffer.from('\r\n'), partHead('second.bin'), file.subarray(0, 5000)]), undefined, 400, 'malformed_multipart'],
  ['a part without Content-Disposition', () => Buffer.from(`--${BOUNDARY}\r\nContent-Type: text/plain\r\n\r\nhello${formTail().toString()}`), undefined, 400, 'no_files'],
  ['a file part with an empty filename', () => oneFileForm('', file), undefined, 400, 'no_files'],
  ['a part head that never ends', () => Buffer.concat([Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="x"\r\nX-Filler: `), Buffer.alloc(100 * 1024, 'a')]), undefined, 400, 'malformed_multipart'],
  ['random bytes', () => randomData(64 * 1024), undefined, 400, undefined],
  ['a file in a field not named file', () => Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="upload"; filename="a.txt"\r\n\r\nhello${formTail().toString()}`), undefined, 400, 'unexpected_field'],
  ['a nested multipart/mixed part', () => Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"\r\nContent-Type: multipart/mixed; boundary=inner\r\n\r\n--inner\r\nContent-Disposition: file; filename="a.txt"\r\n\r\nhello\r\n--inner--${formTail().toString()}`), undefined, 400, 'no_files'],
])('%s: a 4xx, nothing stored', async (_what, body, contentType, status, code) => {
  const res = await send(body(), contentType);
  expect(res.status).toBe(status);
  if (code) expect(res.code).toBe(code);
});

it('a Content-Length shorter than the body: the upload is cut where it says and fails; the rest is not taken for a request', async () => {
  const form = oneFileForm('a.bin', file);
  const client = new RawClient(port);
  await client.write(uploadHead(token, form.length - 5000));
  await client.write(form);
  const res = await within(5000, 'an answer', client.response);
  expect(res?.status).toBe(400);
  await within(5000, 'the connection closing', client.closed);
});

it('a broken chunked encoding closes the connection and leaves nothing', async () => {
  const client = new RawClient(port);
  await client.write(
    `POST /v1/files HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Type: multipart/form-data; boundary=${BOUNDARY}\r\nTransfer-Encoding: chunked\r\n\r\n`,
  );
  const part = Buffer.concat([partHead('chunked.bin'), file.subarray(0, 4096)]);
  await client.write(Buffer.concat([Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\nnot-hex\r\n')]));
  await within(5000, 'the connection closing', client.closed);
  await t.logs.waitFor((l) => l.msg === 'upload failed');
});
