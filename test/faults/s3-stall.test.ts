import fsp from 'node:fs/promises';
import path from 'node:path';
import { type FaultProxy, startFaultProxy } from '../helpers/fault-proxy';
import { s3Env } from '../helpers/s3env';
import { type S3TestServer, startS3Server } from '../helpers/s3server';
import { bearer, createKeyWithCli, freePort, type LogLine, runService, type ServiceProcess } from '../helpers/service';
import { makeTempDir } from '../helpers/tmp';

/**
 * S3 that stalls (accepts connections, never answers) under the built `serve`, with s3rver behind
 * a proxy switched to `stall`: uploads, downloads and HEADs answer 503 `store_unavailable` with
 * Retry-After within S3_REQUEST_TIMEOUT_MS; /readyz answers at once and says the store is
 * unavailable after its next check; a running report's attempt fails within its lease; /healthz
 * answers throughout. Switched back to `pass`, everything works again without a restart.
 */

const TIMEOUT_MS = 1500;
/** Scheduling slack on a loaded machine, and the catalog work around the store call. */
const MARGIN_MS = 1500;
const LEASE_S = 5;
/** An answer that does not wait on the store. */
const PROMPT_MS = 500;

let s3: S3TestServer;
let proxy: FaultProxy;
let dir: string;
let svc: ServiceProcess;
let base: string;
let auth: { Authorization: string };

beforeAll(async () => {
  s3 = await startS3Server();
  proxy = await startFaultProxy(s3.endpoint);
  dir = await makeTempDir('stowage-s3-stall-');
  const env = {
    ...s3Env(s3, {
      S3_ENDPOINT: proxy.endpoint,
      S3_CONNECT_TIMEOUT_MS: String(TIMEOUT_MS),
      S3_REQUEST_TIMEOUT_MS: String(TIMEOUT_MS),
      STORE_CHECK_INTERVAL: '1s',
      TASK_LEASE_SECONDS: String(LEASE_S),
      TASK_MAX_ATTEMPTS: '5',
    }),
    DATABASE_PATH: path.join(dir, 'stowage.db'),
    HOME: dir,
  };
  auth = bearer(await createKeyWithCli(env, 'alice', 'write', { cwd: dir }));
  const port = await freePort();
  svc = runService(['serve'], { cwd: dir, env: { ...env, PORT: String(port), HOST: '127.0.0.1', WORKERS: '1' } });
  await svc.waitFor((l) => l.msg === 'listening');
  base = `http://127.0.0.1:${port}`;
});
afterAll(async () => {
  expect(svc.child.exitCode).toBeNull();
  await svc.stop();
  await proxy.close();
  await s3.close();
  await fsp.rm(dir, { recursive: true, force: true });
});
afterEach(() => proxy.set('pass'));

const api = (url: string, init: RequestInit = {}) => fetch(`${base}${url}`, { ...init, headers: { ...auth, ...init.headers } });

async function timed(answer: Promise<Response>): Promise<{ res: Response; ms: number }> {
  const started = Date.now();
  const res = await answer;
  return { res, ms: Date.now() - started };
}

async function upload(name: string, text: string): Promise<Response> {
  const form = new FormData();
  form.append('file', new Blob([text], { type: 'text/plain' }), name);
  return api('/v1/files', { method: 'POST', body: form });
}

/** The next log line matching `match`, ignoring those already printed. */
function nextLine(match: (l: LogLine) => boolean): Promise<LogLine> {
  const from = svc.lines.length;
  return svc.waitFor((l) => svc.lines.indexOf(l) >= from && match(l));
}

/** /healthz answers at once, whatever the store does. */
async function expectHealthy() {
  const { res, ms } = await timed(fetch(`${base}/healthz`));
  expect(res.status).toBe(200);
  expect(ms).toBeLessThan(PROMPT_MS);
}

async function expectStoreUnavailable({ res, ms }: { res: Response; ms: number }, method = 'GET') {
  expect(res.status).toBe(503);
  expect(res.headers.get('retry-after')).toBe('5');
  if (method !== 'HEAD') expect(((await res.json()) as { error: { code: string } }).error.code).toBe('store_unavailable');
  expect(ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 100);
  expect(ms).toBeLessThan(TIMEOUT_MS + MARGIN_MS);
}

it('uploads, downloads and HEADs answer 503 store_unavailable within the request timeout, the log saying why; then work again', async () => {
  const before = await upload('before.txt', 'kept before the stall');
  expect(before.status).toBe(201);
  const { id } = ((await before.json()) as { files: { id: string }[] }).files[0];

  await proxy.set('stall');
  const failed = nextLine((l) => l.msg === 'request failed');
  const uploaded = timed(upload('during.txt', 'never kept'));
  const downloaded = timed(api(`/v1/files/${id}/content`));
  const headed = timed(api(`/v1/files/${id}/content`, { method: 'HEAD' }));
  await expectHealthy();
  await expectStoreUnavailable(await uploaded);
  await expectStoreUnavailable(await downloaded);
  await expectStoreUnavailable(await headed, 'HEAD');
  // The real cause is in the log, not just "store unavailable".
  expect(JSON.stringify(await failed)).toContain('requestTimeout');

  await proxy.set('pass');
  expect((await upload('after.txt', 'kept after')).status).toBe(201);
  const download = await api(`/v1/files/${id}/content`);
  expect(download.status).toBe(200);
  expect(await download.text()).toBe('kept before the stall');
  const list = (await (await api('/v1/files')).json()) as { files: { name: string; status: string }[] };
  expect(list.files.map((f) => [f.name, f.status]).sort()).toEqual([
    ['after.txt', 'ready'],
    ['before.txt', 'ready'],
  ]);
});

it('/readyz answers at once while the store stalls, says it is unavailable once a check times out, and ready again when it answers', async () => {
  await proxy.set('stall');
  const checkFailed = nextLine((l) => l.msg === 'store check failed');
  // Answered from the last check: no waiting on the store.
  const first = await timed(fetch(`${base}/readyz`));
  expect(first.ms).toBeLessThan(PROMPT_MS);

  expect((await checkFailed).store).toContain(`accepted the connection but sent no answer within 1.5 s (S3_REQUEST_TIMEOUT_MS) while checking bucket`);
  const down = await timed(fetch(`${base}/readyz`));
  expect(down.ms).toBeLessThan(PROMPT_MS);
  expect(down.res.status).toBe(503);
  expect(await down.res.json()).toMatchObject({ error: { code: 'not_ready', message: 'Not ready: store: unavailable. The log says why.' } });
  await expectHealthy();

  const passed = nextLine((l) => l.msg === 'store check passed again');
  await proxy.set('pass');
  await passed;
  const up = await fetch(`${base}/readyz`);
  expect(up.status).toBe(200);
  expect(await up.json()).toMatchObject({ status: 'ready', checks: { store: 'ok', database: 'ok' } });
});

it('a running report’s attempt fails within its lease while the store stalls, and the report is built once the store answers', async () => {
  const source = await upload('source.csv', 'name,qty\nZoë,3\nAda,5\n');
  const sourceId = ((await source.json()) as { files: { id: string }[] }).files[0].id;

  await proxy.set('stall');
  const report = (body: object) => api('/v1/reports', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  // One writes its output to the store, the other first reads its source from it.
  const inline = await report({
    format: 'csv',
    title: 'Inline',
    columns: [
      { key: 'name', header: 'Name', type: 'string' },
      { key: 'qty', header: 'Quantity', type: 'integer' },
    ],
    rows: [{ name: 'Zoë', qty: 3 }],
  });
  const fromSource = await report({ format: 'csv', title: 'From source', source: { fileId: sourceId } });
  expect([inline.status, fromSource.status]).toEqual([202, 202]);
  const ids = await Promise.all([inline, fromSource].map(async (r) => ((await r.json()) as { id: string }).id));

  for (const id of ids) {
    const failed = await svc.waitFor((l) => l.taskId === id && l.msg === 'task attempt failed');
    // Out of `running` well within its lease: the queue behind it moves on.
    expect(failed.durationMs).toBeLessThan(Math.min(LEASE_S * 1000, TIMEOUT_MS + MARGIN_MS));
    expect(JSON.stringify(failed.err)).toContain('did not answer in time');
  }
  await expectHealthy();

  await proxy.set('pass');
  for (const id of ids) {
    await svc.waitFor((l) => l.taskId === id && l.msg === 'task finished');
    const task = (await (await api(`/v1/tasks/${id}`)).json()) as { status: string; attempts: number; outputs: { links: { content: string } }[]; log: { message: string }[] };
    expect(task.status).toBe('succeeded');
    expect(task.log.map((l) => l.message)).toContain('Attempt 1 failed: Something went wrong on our side while running this task. Retrying.');
    const csv = await (await api(task.outputs[0].links.content)).text();
    expect(csv).toContain('Zoë');
  }
});
