import { Worker } from 'node:worker_threads';

/** What a stream being hashed on the thread hears back. */
export interface HashClient {
  readonly hashId: number;
  /** A block the thread has hashed, handed back to be filled again. */
  returned(block: ArrayBuffer): void;
  digested(hex: string): void;
  failed(err: Error): void;
}

type FromThread = { type: 'block'; id: number; block: ArrayBuffer } | { type: 'digest'; id: number; hex: string };

/**
 * The thread runs at a lower priority (on Linux, where niceness is per thread, so only this thread
 * is affected). Hashing can lag behind and catch up in idle moments, while socket reads and disk
 * writes, which pace an upload, come first. At the same priority the thread took CPU from them:
 * a 1 GiB upload took 2.8-3.8 s against 2.1-2.9 s niced, with the bare server at 1.7-2.3 s
 * (`npm run bench -- upload`, 2 cores). Lowering a thread's priority needs no privileges.
 */
const NICENESS = 5;

// Inline source, so the same code runs from dist/ and under ts-jest without a separate .js file.
const SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
if (process.platform === 'linux') {
  try {
    require('node:os').setPriority(${NICENESS});
  } catch {}
}
const hashes = new Map();
parentPort.on('message', (m) => {
  if (m.type === 'update') {
    let hash = hashes.get(m.id);
    if (!hash) hashes.set(m.id, (hash = createHash('sha256')));
    hash.update(new Uint8Array(m.block, 0, m.length));
    parentPort.postMessage({ type: 'block', id: m.id, block: m.block }, [m.block]);
  } else if (m.type === 'end') {
    const hash = hashes.get(m.id) ?? createHash('sha256');
    hashes.delete(m.id);
    parentPort.postMessage({ type: 'digest', id: m.id, hex: hash.digest('hex') });
  } else if (m.type === 'drop') {
    hashes.delete(m.id);
  }
});
`;

/**
 * One worker thread per process that keeps a sha256 per stream. Blocks are transferred, not
 * copied, both ways. The thread holds the process open only while some stream is waiting on it,
 * so a CLI command that hashes still gets its digest, and an idle server can still exit.
 */
export class HashThread {
  private static current: HashThread | null = null;
  private readonly clients = new Map<number, HashClient>();
  private readonly worker: Worker;

  /** The process's thread, started on first use and again after one has died. */
  static join(client: HashClient): HashThread {
    HashThread.current ??= new HashThread();
    HashThread.current.add(client);
    return HashThread.current;
  }

  private constructor() {
    this.worker = new Worker(SOURCE, { eval: true });
    this.worker.unref();
    this.worker.on('message', (m: FromThread) => {
      const client = this.clients.get(m.id);
      if (!client) return;
      if (m.type === 'block') return client.returned(m.block);
      this.remove(m.id);
      client.digested(m.hex);
    });
    const died = (cause: Error) => {
      if (HashThread.current === this) HashThread.current = null;
      const clients = [...this.clients.values()];
      this.clients.clear();
      this.worker.unref();
      for (const client of clients) client.failed(new Error('The sha256 thread stopped.', { cause }));
    };
    this.worker.on('error', died);
    this.worker.on('exit', (code) => died(new Error(`It exited with code ${code}.`)));
  }

  update(id: number, block: ArrayBuffer, length: number): void {
    this.worker.postMessage({ type: 'update', id, block, length }, [block]);
  }

  end(id: number): void {
    this.worker.postMessage({ type: 'end', id });
  }

  /** Forgets a stream that won't finish (destroyed or failed). */
  drop(id: number): void {
    if (this.remove(id)) this.worker.postMessage({ type: 'drop', id });
  }

  private add(client: HashClient): void {
    if (this.clients.size === 0) this.worker.ref();
    this.clients.set(client.hashId, client);
  }

  private remove(id: number): boolean {
    const had = this.clients.delete(id);
    if (had && this.clients.size === 0) this.worker.unref();
    return had;
  }
}
