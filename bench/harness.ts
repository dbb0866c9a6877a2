import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import readline from 'node:readline';
import { Readable } from 'node:stream';

export const ROOT = path.resolve(__dirname, '../..');

/** A size from a live process's /proc/<pid>/status (Linux), in MB: VmRSS now, VmHWM its peak. */
export function procStatusMb(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
  return kb / 1024;
}

/**
 * CPU time a live process has used (user + system), in ms, from /proc/<pid>/stat: steadier than
 * wall-clock speed on a machine other work shares.
 */
export function cpuMs(pid: number): number {
  // The fields after the command's name (which may hold spaces) in parentheses; utime and stime are the 14th and 15th.
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

/** Peak resident set size of a live process, from Linux's VmHWM (the high-water mark). */
export const peakRssMb = (pid: number): number => procStatusMb(pid, 'VmHWM');

export interface Child {
  process: ChildProcess;
  port: number;
  stop(): Promise<void>;
}

/** Starts a server script and waits for the JSON log line that carries its port. */
export async function startChild(script: string, env: Record<string, string>, options: { cwd?: string; nodeArgs?: string[] } = {}): Promise<Child> {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), script], {
    cwd: options.cwd,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)));
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const parsed = JSON.parse(line) as { msg?: string; port?: number };
        if (parsed.msg === 'listening' && parsed.port) resolve(parsed.port);
      } catch {
        // not a log line
      }
    });
  });
  return {
    process: child,
    port,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** `count` repetitions of one random block: incompressible, and costs the client nothing to make. */
export function repeatedBody(block: Buffer, count: number, head?: Buffer, tail?: Buffer): Readable {
  return Readable.from(
    (function* () {
      if (head) yield head;
      for (let i = 0; i < count; i++) yield block;
      if (tail) yield tail;
    })(),
    { objectMode: false },
  );
}

export function request(
  options: http.RequestOptions & { body?: Readable | Buffer },
): Promise<{ status: number; bytes: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(options, (res) => {
      let bytes = 0;
      const text: Buffer[] = [];
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (text.length < 64) text.push(chunk);
      });
      res.on('end', () => resolve({ status: res.statusCode!, bytes, body: Buffer.concat(text).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (options.body instanceof Readable) options.body.pipe(req);
    else req.end(options.body);
  });
}

/** A multipart form of one file: `block` repeated to `size` bytes, or the file at `file` (of `size` bytes) read as it is sent. */
export function multipart(filename: string, size: number, block: Buffer, file?: string) {
  // Shaped like Chrome's (38 characters; curl sends 46). The length matters: the parser's boundary
  // search skips ahead by up to the boundary's length, so a short made-up one would cost more.
  const boundary = '----WebKitFormBoundary7MA4YWxkTrZu0gWx';
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  return {
    contentType: `multipart/form-data; boundary=${boundary}`,
    length: head.length + size + tail.length,
    body: () => (file ? fileBody(file, head, tail) : repeatedBody(block, size / block.length, head, tail)),
  };
}

function fileBody(file: string, head: Buffer, tail: Buffer): Readable {
  return Readable.from(
    (async function* () {
      yield head;
      yield* fs.createReadStream(file);
      yield tail;
    })(),
    { objectMode: false },
  );
}

/**
 * POSTs one file of `size` bytes (`block` repeated, or read from `file`) to stowage's API; resolves
 * with its id. `token`: an API key, sent as a deployed client would.
 */
export async function uploadToStowage(port: number, name: string, size: number, block: Buffer, agent?: http.Agent, file?: string, token?: string): Promise<string> {
  const form = multipart(name, size, block, file);
  const res = await request({
    host: '127.0.0.1', port, method: 'POST', path: '/v1/files', agent,
    headers: { 'content-type': form.contentType, 'content-length': form.length, ...(token && { authorization: `Bearer ${token}` }) },
    body: form.body(),
  });
  if (res.status !== 201) throw new Error(`upload failed: ${res.status} ${res.body}`);
  return (JSON.parse(res.body) as { files: { id: string }[] }).files[0].id;
}

export const mbps = (bytes: number, ms: number) => bytes / 1024 / 1024 / (ms / 1000);

export function table(rows: Record<string, string | number>[]): void {
  const keys = Object.keys(rows[0]);
  const widths = keys.map((k) => Math.max(k.length, ...rows.map((r) => String(r[k]).length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ');
  console.log(line(keys));
  for (const r of rows) console.log(line(keys.map((k) => String(r[k]))));
}
