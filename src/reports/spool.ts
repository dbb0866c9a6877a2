import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { drainedOrClosed } from './writer';

/**
 * A temporary file of JSON lines, written once and read back once, for work that needs its input
 * twice (a PDF is laid out before it is drawn) without holding it in memory. Lives in the OS temp
 * directory (ephemeral dyno or machine disk is fine) and is removed by `dispose`.
 */
export class Spool<T> {
  /** A write error (disk full) is kept and thrown by the next write, not left unhandled. */
  private failure: Error | undefined;

  private constructor(
    private readonly dir: string,
    private readonly file: string,
    private readonly out: fs.WriteStream,
  ) {
    out.on('error', (err) => (this.failure = err));
  }

  /** A new spool in a directory of its own under `parent` (the OS temp directory by default). */
  static async create<T>(parent = os.tmpdir()): Promise<Spool<T>> {
    const dir = await fsp.mkdtemp(path.join(parent, 'stowage-spool-'));
    const file = path.join(dir, 'spool.jsonl');
    const out = fs.createWriteStream(file);
    await new Promise<void>((resolve, reject) => out.once('open', () => resolve()).once('error', reject));
    return new Spool<T>(dir, file, out);
  }

  async write(item: T): Promise<void> {
    if (this.failure) throw this.failure;
    if (!this.out.write(JSON.stringify(item) + '\n')) await drainedOrClosed(this.out);
  }

  async finish(): Promise<void> {
    await new Promise<void>((resolve) => this.out.end(resolve).once('close', resolve));
    if (this.failure) throw this.failure;
  }

  async *read(): AsyncGenerator<T> {
    const lines = readline.createInterface({ input: fs.createReadStream(this.file), crlfDelay: Infinity });
    for await (const line of lines) yield JSON.parse(line) as T;
  }

  async dispose(): Promise<void> {
    this.out.destroy();
    await fsp.rm(this.dir, { recursive: true, force: true });
  }
}
