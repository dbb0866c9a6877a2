import net from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 between a client and a real server (s3rver, PostgreSQL...), which a
 * test switches between ways a network fails:
 *
 * - `pass`: bytes flow both ways. Connections held by a stall flow again, what their client sent
 *   meanwhile delivered late, as a network that comes back would.
 * - `stall`: connections are accepted and held open, but nothing is forwarded either way, on new
 *   connections or on ones already open: a server that accepts and never answers. A client that
 *   gives up and closes its connection meanwhile has it dropped (its request never arrives).
 * - `refuse`: the port stops listening (new connections get ECONNREFUSED) and every open
 *   connection is reset.
 * - `reset`: connections are accepted and reset at once (ECONNRESET), open ones too.
 *
 *     const proxy = await startFaultProxy(s3.endpoint);   // forwards to http://127.0.0.1:<port>
 *     // point the client at proxy.endpoint, then:
 *     await proxy.set('stall'); ...; await proxy.set('pass');
 *     await proxy.close();                                 // ends every connection
 */
export type FaultMode = 'pass' | 'stall' | 'refuse' | 'reset';

export interface FaultProxy {
  /** `http://127.0.0.1:<port>`: what the client connects to. */
  endpoint: string;
  port: number;
  mode(): FaultMode;
  /** Switches mode; resolves once it applies to every connection (and the port listens again, leaving `refuse`). */
  set(mode: FaultMode): Promise<void>;
  /** Connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

interface Pair {
  client: net.Socket;
  /** Connected the first time the pair may pass bytes. */
  upstream?: net.Socket;
  flowing: boolean;
  /** What the client sent while the pair was held. */
  held: Buffer[];
}

/** Starts a proxy to `target` (`http://host:port`, or a port on 127.0.0.1), in `pass` mode. */
export async function startFaultProxy(target: string | number): Promise<FaultProxy> {
  const url = typeof target === 'number' ? new URL(`http://127.0.0.1:${target}`) : new URL(target);
  const to = { host: url.hostname, port: Number(url.port) };
  let mode: FaultMode = 'pass';
  let accepted = 0;
  const pairs = new Set<Pair>();

  const end = (pair: Pair) => {
    pairs.delete(pair);
    pair.client.destroy();
    pair.upstream?.destroy();
  };
  const reset = (pair: Pair) => {
    pairs.delete(pair);
    pair.client.resetAndDestroy();
    pair.upstream?.destroy();
  };
  const connect = (pair: Pair): net.Socket => {
    const upstream = net.connect(to);
    upstream.on('data', (chunk: Buffer) => {
      if (!pair.client.write(chunk)) upstream.pause();
    });
    upstream.on('end', () => pair.client.end());
    upstream.on('error', () => end(pair));
    upstream.on('close', () => end(pair));
    upstream.on('drain', () => pair.client.resume());
    return upstream;
  };
  const flow = (pair: Pair) => {
    if (pair.flowing) return;
    pair.flowing = true;
    const upstream = (pair.upstream ??= connect(pair));
    for (const chunk of pair.held.splice(0)) upstream.write(chunk);
    upstream.resume();
  };
  // The client's bytes are read and kept (so a client that gives up is seen leaving, and its
  // connection dropped); the server's wait, unread.
  const hold = (pair: Pair) => {
    pair.flowing = false;
    pair.upstream?.pause();
    pair.client.resume();
  };

  const server = net.createServer((client) => {
    accepted++;
    const pair: Pair = { client, flowing: false, held: [] };
    pairs.add(pair);
    client.on('data', (chunk: Buffer) => {
      if (!pair.flowing) pair.held.push(chunk);
      else if (!pair.upstream!.write(chunk)) client.pause();
    });
    client.on('drain', () => {
      if (pair.flowing) pair.upstream?.resume();
    });
    client.on('end', () => (pair.flowing ? pair.upstream!.end() : end(pair)));
    client.on('error', () => end(pair));
    client.on('close', () => end(pair));
    if (mode === 'pass') flow(pair);
    else if (mode === 'stall') hold(pair);
    else reset(pair);
  });
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  const stopListening = () => new Promise<void>((resolve) => server.close(() => resolve()));

  await listen(0);
  const { port } = server.address() as net.AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    mode: () => mode,
    connections: () => accepted,
    async set(next) {
      const was = mode;
      mode = next;
      if (next === 'refuse' && was !== 'refuse') await new Promise<void>((resolve) => {
        // close() waits for open connections: start it, then reset them.
        void stopListening().then(resolve);
        for (const pair of [...pairs]) reset(pair);
      });
      if (next !== 'refuse' && was === 'refuse') await listen(port);
      for (const pair of [...pairs]) {
        if (next === 'pass') flow(pair);
        else if (next === 'stall') hold(pair);
        else reset(pair);
      }
    },
    async close() {
      for (const pair of [...pairs]) end(pair);
      if (server.listening) await stopListening();
    },
  };
}
