// The baseline: the least a Node server can do to take a file and give it back. With
// BARE_FSYNC=1 it also fsyncs each upload before answering: the same server, made durable.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';

const dir = process.env.BARE_DIR!;
const flush = process.env.BARE_FSYNC === '1';
let next = 0;
const server = http.createServer(async (req, res) => {
  try {
    if (req.method === 'POST') {
      const name = String(next++);
      await pipeline(req, fs.createWriteStream(path.join(dir, name), { flush }));
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
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as { port: number };
  process.stdout.write(`${JSON.stringify({ msg: 'listening', port })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
