import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import type { TestApp } from '../helpers/app';

export interface ReceivedEvent {
  id: string;
  type: string;
  timestamp: string;
  data: Record<string, unknown>;
}

/** What the receiver answers to one request; by default 200. */
export type Answer = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/**
 * A webhook receiver on 127.0.0.1 as an app would write one: every request is verified with the
 * `standardwebhooks` package (a bad signature answers 401 and is not processed), and an event
 * is processed once, whatever the number of deliveries of its `webhook-id`.
 */
export class Receiver {
  /** Every request that verified, in order (retries included). */
  readonly attempts: { id: string; path: string }[] = [];
  /** Events processed: the first verified delivery of each id answered 2xx. */
  readonly events: ReceivedEvent[] = [];
  /** Requests whose signature did not verify. */
  readonly rejected: string[] = [];
  /** Answers for the next requests, in order; then 200. */
  readonly answers: Answer[] = [];
  private server?: http.Server;
  private waiters: { n: number; match: (e: ReceivedEvent) => boolean; resolve: () => void }[] = [];
  port = 0;

  constructor(readonly secret: string) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/hooks`;
  }

  /** Starts listening (again on the same port once it has one). */
  async start(): Promise<void> {
    const server = http.createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Stops listening: connections are refused until `start`. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  }

  /** Resolves once `n` processed events match. */
  waitForEvents(n: number, match: (e: ReceivedEvent) => boolean = () => true): Promise<void> {
    return new Promise((resolve) => {
      this.waiters.push({ n, match, resolve });
      this.wake();
    });
  }

  private wake(): void {
    this.waiters = this.waiters.filter((w) => !(this.events.filter(w.match).length >= w.n && (w.resolve(), true)));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let event: Omit<ReceivedEvent, 'id'>;
      try {
        event = new Webhook(this.secret).verify(body, req.headers as Record<string, string>) as Omit<ReceivedEvent, 'id'>;
      } catch (err) {
        this.rejected.push(String(err));
        res.writeHead(401).end();
        return;
      }
      const id = String(req.headers['webhook-id']);
      this.attempts.push({ id, path: req.url ?? '' });
      const answer = this.answers.shift();
      if (answer) return answer(req, res);
      if (!this.events.some((e) => e.id === id)) this.events.push({ id, ...event });
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      this.wake();
    });
  }
}

/** A Standard Webhooks secret for a test endpoint. */
export const testSecret = (fill: string): string => `whsec_${Buffer.alloc(32, fill).toString('base64')}`;

export interface ListedDelivery {
  id: string;
  eventId: string;
  type: string;
  endpoint: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  lastError: { code: string; message: string } | null;
}

/**
 * The owner's deliveries (GET /v1/webhooks/deliveries) once `done` holds of them, asked again at
 * each change of a task: a receiver hears of an event before its delivery is recorded.
 */
export async function deliveriesWhen(t: TestApp, owner: string, done: (deliveries: ListedDelivery[]) => boolean): Promise<ListedDelivery[]> {
  for (;;) {
    const changed = once(t.queue.events, 'changed');
    const { body } = await t.http(owner).get('/v1/webhooks/deliveries');
    if (done(body.deliveries)) return body.deliveries;
    await changed;
  }
}
