// The baseline: the least a Node server can do to take a file and give it back. With
// BARE_FSYNC=1 it also fsyncs each upload before answering: the same server, made durable.
// BARE_DURABLE=1 makes each file durable the way stowage must (write to a temp name, fsync,
// rename, fsync the directory), and with BARE_DATABASE_URL also INSERTs one row per file into
// that PostgreSQL database (a pool of stowage's default size) before answering.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Pool } from 'pg';

const dir = process.env.BARE_DIR!;
const flush = process.env.BARE_FSYNC === '1';
const durable = process.env.BARE_DURABLE === '1';
const pool = process.env.BARE_DATABASE_URL ? new Pool({ connectionString: process.env.BARE_DATABASE_URL, max: 10 }) : undefined;
let next = 0;

async function syncDir(): Promise<void> {
  const handle = await fsp.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function receive(req: http.IncomingMessage, name: string): Promise<void> {
  if (!durable) return pipeline(req, fs.createWriteStream(path.join(dir, name), { flush }));
  const temp = path.join(dir, '.tmp', `${name}.part`);
  const out = fs.createWriteStream(temp, { flush: true });
  await pipeline(req, out);
  await fsp.rename(temp, path.join(dir, name));
  await syncDir();
  await pool?.query('INSERT INTO files (id, size, created_at) VALUES ($1, $2, now())', [name, out.bytesWritten]);
}

const server = http.createServer(async (req, res) => {
  try {
    if (req.method === 'POST') {
      const name = String(next++);
      await receive(req, name);
      res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ id: name }));
    } else {
      const file = path.join(dir, path.basename(req.url ?? ''));
      const { size } = await fs.promises.stat(file);
      res.writeHead(200, { 'content-length': size });
      await pipeline(fs.createReadStream(file), res);
    }
  } catch {
    res.destroy();
  }
});

async function main() {
  if (durable) await fsp.mkdir(path.join(dir, '.tmp'), { recursive: true });
  await pool?.query('CREATE TABLE IF NOT EXISTS files (id text PRIMARY KEY, size bigint NOT NULL, created_at timestamptz NOT NULL)');
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as { port: number };
    process.stdout.write(`${JSON.stringify({ msg: 'listening', port })}\n`);
  });
}
void main();
process.on('SIGTERM', () => server.close(() => void (pool?.end() ?? Promise.resolve()).then(() => process.exit(0))));
