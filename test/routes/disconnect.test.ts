import http from 'node:http';
import net from 'node:net';
import { allRecords, buildTestApp, type TestApp } from '../helpers/app';
import { randomData } from '../helpers/streams';

let t: TestApp;
let server: http.Server;
afterEach(async () => {
  await new Promise((resolve) => server.close(resolve));
  await t.close();
});

it.each(['volume', 'memory'])('a client that disconnects mid-upload leaves nothing behind (%s store)', async (storage) => {
  t = await buildTestApp({ STORAGE: storage });
  server = http.createServer(t.app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;

  const token = await t.key('anonymous');
  const socket = net.connect(port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  const boundary = 'b0undary';
  const head = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="first.bin"\r\n\r\n`;
  socket.write(
    `POST /v1/files HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\n` +
      `Content-Length: ${100 * 1024 * 1024}\r\n\r\n${head}`,
  );
  socket.write(randomData(2 * 1024 * 1024));
  await t.logs.waitFor((l) => l.msg === 'upload started');
  expect(await allRecords(t.db)).toMatchObject([{ status: 'pending' }]);
  socket.destroy();

  const failed = await t.logs.waitFor((l) => l.msg === 'upload failed');
  expect(failed).toMatchObject({ outcome: 'failed', owner: 'anonymous' });
  expect(await allRecords(t.db)).toEqual([]);
  expect(await t.storedFiles()).toEqual([]);
  expect((await t.store.list()).items).toEqual([]);
});
