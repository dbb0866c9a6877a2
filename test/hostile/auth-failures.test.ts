import http from 'node:http';
import request from 'supertest';
import { allRecords, buildTestApp, type TestApp } from '../helpers/app';
import { randomData } from '../helpers/streams';
import { closeServer, listen, partHead, RawClient, uploadHead, within } from './raw';

/**
 * Slow or vanished clients with valid keys are not failed authentication attempts: before, every
 * request in flight counted against AUTH_FAILURES_PER_15M until it was answered, and one whose
 * client went away counted for the whole window, so a few dropped uploads from one address (or
 * from everyone behind one proxy) locked that address out with 429.
 */
let t: TestApp;
let server: http.Server;
afterEach(async () => {
  await closeServer(server);
  await t.close();
});

it('uploads in flight and uploads whose client went away do not count as failed attempts', async () => {
  t = await buildTestApp({ AUTH_FAILURES_PER_15M: '3' });
  server = http.createServer(t.app);
  const port = await listen(server);
  const token = await t.key('anonymous');

  const clients = [];
  for (let i = 0; i < 5; i++) {
    const client = new RawClient(port);
    await client.write(uploadHead(token, 1024 * 1024));
    await client.write(Buffer.concat([partHead(`dropped-${i}.bin`), randomData(1024)]));
    clients.push(client);
  }
  for (;;) {
    if ((await allRecords(t.db)).length === 5) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  for (const c of clients) c.destroy();
  for (;;) {
    if (t.logs.lines.filter((l) => l.msg === 'upload failed').length === 5) break;
    await within(2000, 'the dropped uploads failing', t.logs.waitFor((l) => l.msg === 'upload failed'));
    await new Promise((resolve) => setTimeout(resolve, 20));
  }

  expect((await t.http().get('/v1/files')).status).toBe(200);
  // Real failures still count.
  for (let i = 0; i < 3; i++) expect((await request(t.app).get('/v1/files').set('Authorization', 'Bearer stw_guess')).status).toBe(401);
  const limited = await request(t.app).get('/v1/files').set('Authorization', 'Bearer stw_guess');
  expect(limited.status).toBe(429);
  expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
});
