import http from 'node:http';
import type net from 'node:net';
import request from 'supertest';
import { buildTestApp, type TestApp } from '../helpers/app';
import { s3Env } from '../helpers/s3env';
import { startS3Server, type S3TestServer } from '../helpers/s3server';

/**
 * `/readyz` as Fly's check calls it (every 15 s on every Machine): answered from the latest
 * store check, which a background refresh keeps recent without writing to the bucket. Every
 * request that reaches the bucket goes through a real HTTP relay in front of s3rver, which
 * records it and can be switched off and on like an outage.
 */

const INTERVAL_MS = 1000;

/** An HTTP relay to s3rver on a fixed port, recording each request's method and path. */
class Relay {
  readonly seen: string[] = [];
  private waiters: ((request: string) => void)[] = [];
  private server?: http.Server;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  constructor(private readonly target: string) {}

  async start(): Promise<void> {
    const target = new URL(this.target);
    const server = http.createServer((req, res) => {
      const seen = `${req.method} ${req.url!.split('?')[0]}`;
      this.seen.push(seen);
      for (const waiter of this.waiters.splice(0)) waiter(seen);
      const upstream = http.request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode!, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.on('error', (err) => res.destroy(err));
      req.pipe(upstream);
    });
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  /** The next request to arrive. */
  next(): Promise<string> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Nothing listens on the port any more, and open connections are cut: an outage. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    const closed = new Promise((resolve) => server.close(resolve));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }
}

let s3: S3TestServer;
let relay: Relay;
let t: TestApp;
beforeAll(async () => {
  s3 = await startS3Server();
});
afterAll(() => s3.close());
beforeEach(async () => {
  const bucket = await s3.newBucket();
  relay = new Relay(bucket.endpoint);
  await relay.start();
  t = await buildTestApp(s3Env(bucket, { S3_ENDPOINT: relay.endpoint, STORE_CHECK_INTERVAL: `${INTERVAL_MS}ms` }));
});
afterEach(async () => {
  await t?.close();
  await relay.stop();
});

it('proves the bucket with a write probe once at start-up; 30 readiness checks then write nothing and barely reach the bucket', async () => {
  const probe = relay.seen.filter((r) => r.includes('/.stowage-probe/'));
  expect(probe.map((r) => r.split(' ')[0])).toEqual(['PUT', 'GET', 'DELETE']);
  relay.seen.length = 0;

  const started = Date.now();
  for (let i = 0; i < 30; i++) {
    const res = await request(t.app).get('/readyz');
    expect(res.status).toBe(200);
    expect(res.body.checks).toMatchObject({ store: 'ok', database: 'ok' });
    expect(res.body.storeCheckAgeSeconds).toBeLessThanOrEqual(Math.ceil(INTERVAL_MS / 1000) + 1);
  }
  const elapsed = Date.now() - started;
  // Only the background check reached the bucket: one HEAD of the bucket per interval passed.
  const head = `HEAD /${t.config.storage.s3!.bucket}/`;
  expect(relay.seen.filter((r) => r !== head)).toEqual([]);
  expect(relay.seen.length).toBeLessThanOrEqual(Math.floor(elapsed / INTERVAL_MS) + 1);
  // And it goes on, reading only.
  expect(await relay.next()).toBe(head);
});

it('reports a bucket that becomes unreachable within the interval, without a restart, and recovers when it is back', async () => {
  expect((await request(t.app).get('/readyz')).status).toBe(200);

  await relay.stop();
  const broke = Date.now();
  const failed = await t.logs.waitFor((l) => l.msg === 'store check failed');
  expect(Date.now() - broke).toBeLessThan(2 * INTERVAL_MS + 500);
  expect(failed.store).toContain(`S3_ENDPOINT: ${relay.endpoint} refused the connection while checking bucket`);
  const down = await request(t.app).get('/readyz');
  expect(down.status).toBe(503);
  expect(down.body.error).toMatchObject({ code: 'not_ready', message: 'Not ready: store: unavailable. The log says why.' });

  await relay.start();
  await t.logs.waitFor((l) => l.msg === 'store check passed again');
  const up = await request(t.app).get('/readyz');
  expect(up.status).toBe(200);
  expect(up.body.checks.store).toBe('ok');
  // The answer says how old its store result is, from the check that found the bucket back.
  expect(Date.parse(up.body.storeCheckedAt)).toBeGreaterThan(broke);
});
