import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { createInterface } from 'node:readline';

/** A server on 127.0.0.1 whose endpoint a test points a client at; `close` ends every connection. */
export interface FakeEndpoint {
  endpoint: string;
  port: number;
  /** Connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

/** Accepts every connection and never answers a byte: an S3 endpoint that hangs. */
export async function startBlackHole(): Promise<FakeEndpoint> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    connections: () => accepted,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Answers every request with `status` and an HTML page: something that is not S3 (a web server, a proxy). */
export async function startNotS3(status: number): Promise<FakeEndpoint> {
  let accepted = 0;
  const server = http.createServer((_req, res) => {
    res.writeHead(status, { 'Content-Type': 'text/html' });
    res.end('<html><body><h1>Not here</h1></body></html>');
  });
  server.on('connection', () => accepted++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    connections: () => accepted,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A port nothing listens on (connections are refused). */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * A port where TCP connections never complete: a listening socket that never accepts, its
 * backlog already full, so the kernel drops further SYNs. Node always accepts, so this needs a
 * python3 child; undefined when there is none.
 */
export async function startUnconnectable(): Promise<(FakeEndpoint & { child: ChildProcess }) | undefined> {
  const script = [
    'import socket, sys',
    "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(0)",
    'port = s.getsockname()[1]',
    'held = []',
    'for _ in range(4):',
    '    c = socket.socket(); c.setblocking(False)',
    "    try: c.connect(('127.0.0.1', port))",
    '    except BlockingIOError: pass',
    '    held.append(c)',
    'print(port, flush=True)',
    'sys.stdin.read()',
  ].join('\n');
  const child = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise<number | undefined>((resolve) => {
    child.once('error', () => resolve(undefined));
    child.once('exit', () => resolve(undefined));
    createInterface({ input: child.stdout! }).once('line', (line) => resolve(Number(line)));
  });
  if (port === undefined) return undefined;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    child,
    connections: () => 0,
    close: async () => {
      child.stdin!.end();
      await exited;
    },
  };
}
