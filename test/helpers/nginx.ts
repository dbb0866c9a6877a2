import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';
import { freePort, ROOT } from './service';

/** Debian's nginx (`apt-get install nginx-light`; .ci/run installs it). */
export const NGINX = '/usr/sbin/nginx';

/** The server block docker-compose.nginx.yml gives the official nginx image (under the repository's root). */
export const DEPLOYED_CONFIG = 'deploy/nginx/stowage.conf';

export interface Nginx {
  /** http://127.0.0.1:<port> of the deployed server block. */
  url: string;
  /** Every line nginx wrote to its error log (stderr). */
  log: string[];
  /** The master process's; its one worker is its child. */
  pid: number;
  stop(): Promise<void>;
}

/**
 * deploy/nginx/stowage.conf as it is, but for its lines marked `# templated`: it listens on
 * 127.0.0.1:`port`, proxies to stowage on 127.0.0.1:`upstreamPort`, and sends files from
 * `filesDir` (stowage's STORAGE_PATH).
 */
export function templatedServerBlock(o: { port: number; upstreamPort: number; filesDir: string; root?: string }): string {
  const text = fs.readFileSync(path.join(o.root ?? ROOT, DEPLOYED_CONFIG), 'utf8');
  let templated = 0;
  const lines = text.split('\n').map((line) => {
    if (!line.includes('# templated')) return line;
    templated += 1;
    if (/^\s*server stowage:3000;/.test(line)) return `    server 127.0.0.1:${o.upstreamPort};`;
    if (/^\s*listen 80;/.test(line)) return `    listen 127.0.0.1:${o.port};`;
    if (/^\s*alias \/data\/files\/;/.test(line)) return `        alias ${o.filesDir}/;`;
    throw new Error(`deploy/nginx/stowage.conf: unexpected templated line: ${line}`);
  });
  if (templated !== 3) throw new Error(`deploy/nginx/stowage.conf: expected 3 templated lines, found ${templated}`);
  return lines.join('\n');
}

/**
 * Starts nginx in the foreground as the official image would run the deployed server block,
 * with everything it writes (pid, logs, temp files) under `dir` and no root needed. As root its
 * workers run as `nobody`, another user than stowage's, as in the compose file: the files must be
 * readable by others, so `filesDir` and its parents must be searchable. `extra` is added inside
 * `http {}` (the benchmark's direct server); `root` is the repository's (the benchmark runs compiled, from dist/).
 */
export async function startNginx(o: { dir: string; upstreamPort: number; filesDir: string; extra?: string; root?: string }): Promise<Nginx> {
  const port = await freePort();
  await fsp.mkdir(o.dir, { recursive: true });
  const conf = path.join(o.dir, 'nginx.conf');
  await fsp.writeFile(
    conf,
    [
      'daemon off;',
      'worker_processes 1;',
      process.getuid?.() === 0 ? 'user nobody nogroup;' : '',
      `pid ${o.dir}/nginx.pid;`,
      'error_log stderr notice;',
      'events { worker_connections 1024; }',
      'http {',
      '  default_type application/octet-stream;',
      `  access_log ${o.dir}/access.log;`,
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${o.dir}/${t}_temp;`),
      templatedServerBlock({ port, upstreamPort: o.upstreamPort, filesDir: o.filesDir, root: o.root }),
      o.extra ?? '',
      '}',
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(NGINX, ['-p', o.dir, '-c', conf, '-e', 'stderr'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const log: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  await new Promise<void>((resolve, reject) => {
    readline.createInterface({ input: child.stderr! }).on('line', (line) => {
      log.push(line);
      if (line.includes('start worker process')) resolve();
    });
    void exited.then((code) => reject(new Error(`nginx exited (${code}) before it started:\n${log.join('\n')}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    log,
    pid: child.pid!,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
