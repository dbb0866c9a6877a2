import http from 'node:http';
import net from 'node:net';

/** A response read off a raw socket: what a client that sent a broken request gets back. */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * A client that writes whatever bytes a test wants on a raw TCP connection (a stalled body, a
 * Content-Length that lies, headers that never end), from `localAddress` when given (127.0.0.x
 * are all loopback on Linux: distinct client addresses without a proxy).
 */
export class RawClient {
  readonly socket: net.Socket;
  /** Resolves with the first response, or undefined if the connection closed without one. */
  readonly response: Promise<RawResponse | undefined>;
  /** Resolves when the connection is closed, by either side. */
  readonly closed: Promise<void>;
  private readonly connected: Promise<void>;

  constructor(port: number, options: { localAddress?: string } = {}) {
    this.socket = net.connect({ port, host: '127.0.0.1', localAddress: options.localAddress });
    this.socket.on('error', () => undefined);
    this.connected = new Promise((resolve) => this.socket.once('connect', () => resolve()));
    this.closed = new Promise((resolve) => this.socket.once('close', () => resolve()));
    this.response = new Promise((resolve) => {
      let buffered = Buffer.alloc(0);
      const tryParse = () => {
        const end = buffered.indexOf('\r\n\r\n');
        if (end < 0) return undefined;
        const [statusLine, ...lines] = buffered.subarray(0, end).toString('latin1').split('\r\n');
        const headers: Record<string, string> = {};
        for (const line of lines) {
          const colon = line.indexOf(':');
          headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
        }
        const length = Number(headers['content-length'] ?? 0);
        if (buffered.length < end + 4 + length) return undefined;
        return { status: Number(statusLine.split(' ')[1]), headers, body: buffered.subarray(end + 4, end + 4 + length).toString() };
      };
      this.socket.on('data', (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        const parsed = tryParse();
        if (parsed) resolve(parsed);
      });
      this.socket.once('close', () => resolve(tryParse()));
    });
  }

  async write(data: string | Buffer): Promise<void> {
    await this.connected;
    if (this.socket.destroyed) return;
    await new Promise<void>((resolve) => this.socket.write(data, () => resolve()));
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export const BOUNDARY = 'hostile-boundary-7MA4YWxkTrZu0gW';

/** The head of one file part, as a browser writes it (`filename` as given: escape it yourself). */
export function partHead(filename: string, type = 'application/octet-stream', boundary = BOUNDARY): Buffer {
  return Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: ${type}\r\n\r\n`);
}

export function formTail(boundary = BOUNDARY): Buffer {
  return Buffer.from(`\r\n--${boundary}--\r\n`);
}

/** One complete multipart body with one file. */
export function oneFileForm(filename: string, data: Buffer): Buffer {
  return Buffer.concat([partHead(filename), data, formTail()]);
}

/** Request head of a multipart upload to `path` (default the API) with `token`, announcing `contentLength` bytes. */
export function uploadHead(token: string, contentLength: number, path = '/v1/files', boundary = BOUNDARY): string {
  return (
    `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n` +
    `Content-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${contentLength}\r\n\r\n`
  );
}

/** Listens on 127.0.0.1 with a free port. */
export async function listen(server: http.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

export function closeServer(server: http.Server | undefined): Promise<void> {
  if (!server?.listening) return Promise.resolve();
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** `promise`, or a rejection naming `what` after `ms`: a test of a timeout fails fast instead of hanging. */
export function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
    }),
  ]);
}
