import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { freePort, runService, type ServiceProcess } from './service';

/** Fly replays only requests whose body is under 1 MB. */
const REPLAY_LIMIT = 1_000_000;

/**
 * Stands in for Fly's proxy, which can't run here, in front of `serve` processes playing Fly
 * Machines (`machines`: Machine id to base URL). A request carrying `fly-force-instance-id` goes to
 * that Machine; any other to the one `choose` picks (the load balancer). An answer with
 * `fly-replay: instance=<id>` is discarded and the request replayed on that Machine with
 * `fly-replay-src`, for bodies under 1 MB only, as Fly does; a larger one gets an error instead.
 * Bodies are buffered whole: tests send a few MiB at most.
 */
export async function startFlyProxy(
  machines: Record<string, string>,
  choose: (req: http.IncomingMessage) => string,
): Promise<{ url: string; close(): Promise<void> }> {
  const send = (target: string, req: http.IncomingMessage, body: Buffer, extra: Record<string, string>) =>
    new Promise<{ res: http.IncomingMessage; body: Buffer }>((resolve, reject) => {
      const out = http.request(`${machines[target]}${req.url}`, { method: req.method, headers: { ...req.headers, ...extra } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ res, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      out.on('error', reject);
      out.end(body);
    });
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      try {
        const body = Buffer.concat(chunks);
        const forced = req.headers['fly-force-instance-id'];
        const first = typeof forced === 'string' && machines[forced] ? forced : choose(req);
        let answer = await send(first, req, body, {});
        const replay = /^instance=(\w+)$/.exec(String(answer.res.headers['fly-replay'] ?? ''))?.[1];
        if (replay) {
          if (body.length >= REPLAY_LIMIT) {
            res.writeHead(502, { 'content-type': 'text/plain' }).end('fly-replay: request body too large to replay\n');
            return;
          }
          answer = await send(replay, req, body, { 'fly-replay-src': `instance=${first};region=test;t=1` });
        }
        res.writeHead(answer.res.statusCode!, answer.res.headers).end(answer.body);
      } catch {
        res.destroy();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * A `serve` process playing Fly Machine `id` in `region`, with its own volume under `dir`, on the
 * shared catalog `databaseUrl`; pushed to `running` (to stop) and answered with its base URL once
 * it listens.
 */
export async function startFlyMachine(
  running: ServiceProcess[],
  dir: string,
  machine: { id: string; region: string; databaseUrl: string; env?: Record<string, string> },
): Promise<string> {
  const port = await freePort();
  const svc = runService(['serve'], {
    cwd: dir,
    env: {
      HOME: dir,
      STORAGE: 'volume',
      STORAGE_PATH: path.join(dir, machine.id, 'files'),
      DATABASE_URL: machine.databaseUrl,
      FLY_MACHINE_ID: machine.id,
      FLY_REGION: machine.region,
      PORT: String(port),
      HOST: '127.0.0.1',
      ...machine.env,
    },
  });
  running.push(svc);
  await svc.waitFor((l) => l.msg === 'listening');
  return `http://127.0.0.1:${port}`;
}
