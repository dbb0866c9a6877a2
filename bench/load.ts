import { createHash, randomBytes } from 'node:crypto';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { createKeyWithCli, freePort, runService, type ServiceProcess } from '../test/helpers/service';
import { peakRssMb, ROOT, table } from './harness';

/**
 * `npm run bench -- load`: the built server on loopback under autocannon for LOAD_SECONDS (60) at
 * LOAD_CONNECTIONS (64): each connection alternates a multipart upload of a fresh 16 KiB file and a
 * download of a file uploaded before (the seed files, then whatever the run has stored). It counts
 * every answer that is not 2xx and every error, reports latency percentiles, then downloads every
 * file that got a 201 and compares its sha256 with what was sent.
 */
const SECONDS = Number(process.env.LOAD_SECONDS ?? 60);
const CONNECTIONS = Number(process.env.LOAD_CONNECTIONS ?? 64);
const FILE_SIZE = 16 * 1024;
const SEED_FILES = 256;
const BOUNDARY = '----WebKitFormBoundary7MA4YWxkTrZu0gWx';

export interface LoadResult {
  seconds: number;
  connections: number;
  requests: number;
  perSecond: number;
  uploads: number;
  downloads: number;
  non2xx: Record<string, number>;
  errors: number;
  timeouts: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  verified: number;
  mismatched: number;
  peakRssMb: number;
}

const sha256 = (data: Buffer | Uint8Array) => createHash('sha256').update(data).digest('hex');

function form(name: string, data: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: application/octet-stream\r\n\r\n`),
    data,
    Buffer.from(`\r\n--${BOUNDARY}--\r\n`),
  ]);
}

async function startServer(dir: string): Promise<{ svc: ServiceProcess; base: string; token: string }> {
  const port = await freePort();
  const env = {
    HOME: dir,
    STORAGE: 'volume',
    STORAGE_PATH: path.join(dir, 'files'),
    HOST: '127.0.0.1',
    PORT: String(port),
    // Request lines at info would cost the shared cores more than the requests.
    LOG_LEVEL: 'warn',
    // Every connection comes from 127.0.0.1: one client address.
    UPLOADS_PER_CLIENT: String(CONNECTIONS),
  };
  // A key before the server starts: with one, a loopback server is not in dev mode.
  const key = await createKeyWithCli(env, 'load', 'write', { appDir: ROOT, cwd: dir });
  const svc = runService(['serve'], { appDir: ROOT, cwd: dir, env });
  const base = `http://127.0.0.1:${port}`;
  for (;;) {
    if (svc.child.exitCode !== null) throw new Error(`serve exited: ${svc.stderr.join('\n')}`);
    if (await fetch(`${base}/readyz`).then((r) => r.ok, () => false)) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { svc, base, token: key.token };
}

export async function runLoadBench(): Promise<LoadResult> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'stowage-load-'));
  const { svc, base, token } = await startServer(dir);
  const auth = { authorization: `Bearer ${token}` };
  try {
    /** Every file that got a 201: its id and the sha256 of what was sent. */
    const sent = new Map<string, string>();
    const expected = new Map<string, string>();
    const ids: string[] = [];
    const recordCreated = (body: string) => {
      const [file] = (JSON.parse(body) as { files: { id: string; name: string }[] }).files;
      const want = expected.get(file.name);
      if (!want) throw new Error(`a 201 for a file never sent: ${file.name}`);
      expected.delete(file.name);
      sent.set(file.id, want);
      ids.push(file.id);
    };
    let n = 0;
    const newUpload = () => {
      const name = `load-${n++}.bin`;
      const data = randomBytes(FILE_SIZE);
      expected.set(name, sha256(data));
      return { name, body: form(name, data) };
    };

    for (let i = 0; i < SEED_FILES; i++) {
      const { body } = newUpload();
      const res = await fetch(`${base}/v1/files`, { method: 'POST', headers: { ...auth, 'content-type': `multipart/form-data; boundary=${BOUNDARY}` }, body });
      if (res.status !== 201) throw new Error(`seed upload: ${res.status} ${await res.text()}`);
      recordCreated(await res.text());
    }

    const non2xx: Record<string, number> = {};
    let uploads = 0;
    let downloads = 0;
    const instance = autocannon({
      url: base,
      connections: CONNECTIONS,
      duration: SECONDS,
      headers: auth,
      requests: [
        {
          method: 'POST',
          path: '/v1/files',
          setupRequest: (req) => ({ ...req, headers: { ...auth, 'content-type': `multipart/form-data; boundary=${BOUNDARY}` }, body: newUpload().body }),
          onResponse: (status, body) => {
            if (status === 201) {
              uploads++;
              recordCreated(body);
            } else non2xx[`upload ${status}`] = (non2xx[`upload ${status}`] ?? 0) + 1;
          },
        },
        {
          method: 'GET',
          setupRequest: (req) => ({ ...req, path: `/v1/files/${ids[Math.floor(Math.random() * ids.length)]}/content` }),
          onResponse: (status) => {
            if (status === 200) downloads++;
            else non2xx[`download ${status}`] = (non2xx[`download ${status}`] ?? 0) + 1;
          },
        },
      ],
    });
    const result = await instance;
    const rss = peakRssMb(svc.child.pid!);

    // Every file that got a 201, back byte for byte.
    let verified = 0;
    let mismatched = 0;
    const queue = [...sent.entries()];
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let next = queue.pop(); next; next = queue.pop()) {
          const [id, want] = next;
          const res = await fetch(`${base}/v1/files/${id}/content`, { headers: auth });
          const got = res.status === 200 ? sha256(new Uint8Array(await res.arrayBuffer())) : `status ${res.status}`;
          if (got === want) verified++;
          else mismatched++;
        }
      }),
    );

    return {
      seconds: SECONDS,
      connections: CONNECTIONS,
      requests: result.requests.total,
      perSecond: result.requests.average,
      uploads,
      downloads,
      non2xx,
      errors: result.errors,
      timeouts: result.timeouts,
      latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max },
      verified,
      mismatched,
      peakRssMb: rss,
    };
  } finally {
    await svc.stop();
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

export function printLoadBench(r: LoadResult): void {
  console.log(`load: ${r.seconds} s at ${r.connections} connections on loopback, 16 KiB uploads alternating with downloads (${os.cpus().length} cores shared by client and server)`);
  table([
    { figure: 'requests', value: r.requests },
    { figure: 'requests/s (mean)', value: r.perSecond.toFixed(0) },
    { figure: 'uploads answered 201', value: r.uploads },
    { figure: 'downloads answered 200', value: r.downloads },
    { figure: 'non-2xx answers', value: Object.values(r.non2xx).reduce((a, b) => a + b, 0) + (Object.keys(r.non2xx).length ? ` (${JSON.stringify(r.non2xx)})` : '') },
    { figure: 'errors (connection)', value: r.errors },
    { figure: 'timeouts', value: r.timeouts },
    { figure: 'latency p50', value: `${r.latencyMs.p50} ms` },
    { figure: 'latency p90', value: `${r.latencyMs.p90} ms` },
    { figure: 'latency p99', value: `${r.latencyMs.p99} ms` },
    { figure: 'latency max', value: `${r.latencyMs.max} ms` },
    { figure: 'files verified byte-identical', value: `${r.verified} of ${r.verified + r.mismatched}` },
    { figure: 'server peak RSS', value: `${r.peakRssMb.toFixed(0)} MB` },
  ]);
}
