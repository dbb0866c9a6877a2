import { createHash, randomBytes } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { type HttpRequest, type HttpResponse, Upload, type UploadOptions } from 'tus-js-client';
import { startFlyMachine, startFlyProxy } from '../helpers/fly-proxy';
import { type PostgresServer, startPostgres } from '../helpers/postgres';
import { bearer, createKeyWithCli, type ServiceProcess } from '../helpers/service';
import { listFilesDeep, makeTempDir } from '../helpers/tmp';

/**
 * Resumable (tus) uploads on two Fly "Machines": two `serve` processes, each with its own volume
 * directory and FLY_MACHINE_ID, on one PostgreSQL catalog. An upload's bytes so far live on the
 * volume of the Machine that created it: requests about it that land on the other Machine are
 * replayed there (fly-replay) when Fly's proxy can replay them, a large PATCH is refused before a
 * byte is read, and a client that sends `fly-force-instance-id` (as the page does) goes straight
 * to the right Machine.
 */

const MiB = 1024 * 1024;
const IAD = '148e0a1b2c3d';
const CDG = '9080e4f5a6b7';
/** A browser app on another origin (CORS_ORIGINS) using tus-js-client. */
const APP_ORIGIN = 'https://app.example.com';

let postgres: PostgresServer;
let dir: string;
const running: ServiceProcess[] = [];
const machines: Record<string, string> = {};
let auth: { Authorization: string };
let proxy: { url: string; close(): Promise<void> };

function machine(id: string, region: string, databaseUrl: string): Promise<string> {
  return startFlyMachine(running, dir, { id, region, databaseUrl, env: { WORKERS: '0', CORS_ORIGINS: APP_ORIGIN } });
}

beforeAll(async () => {
  postgres = await startPostgres();
  dir = await makeTempDir('stowage-fly-tus-');
  auth = bearer(await createKeyWithCli({ HOME: dir, DATABASE_URL: postgres.url }, 'alice', 'write', { cwd: dir }));
  [machines[IAD], machines[CDG]] = await Promise.all([machine(IAD, 'iad', postgres.url), machine(CDG, 'cdg', postgres.url)]);
  // Creations go to iad, everything else to cdg: the wrong Machine for iad's uploads.
  proxy = await startFlyProxy(machines, (req) => (req.method === 'POST' ? IAD : CDG));
});
afterAll(async () => {
  await proxy?.close();
  await Promise.all(running.splice(0).map((s) => s.stop()));
  await Promise.all([postgres?.stop(), fsp.rm(dir, { recursive: true, force: true })]);
});

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const tus = { 'Tus-Resumable': '1.0.0' };

/** Creates an upload of `size` bytes directly on `base`; its id and the Machine the answer names. */
async function create(base: string, size: number): Promise<{ id: string; machine: string | null }> {
  const res = await fetch(`${base}/v1/tus`, { method: 'POST', headers: { ...auth, ...tus, 'Upload-Length': String(size), 'Upload-Metadata': 'filename YS5iaW4=' } });
  expect(res.status).toBe(201);
  return { id: res.headers.get('location')!.split('/').pop()!, machine: res.headers.get('stowage-machine') };
}

const patch = (base: string, id: string, offset: number, body: Buffer, headers: Record<string, string> = {}) =>
  fetch(`${base}/v1/tus/${id}`, {
    method: 'PATCH',
    headers: { ...auth, ...tus, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': String(offset), ...headers },
    body,
  });

const offsetOn = async (base: string, id: string) => {
  const res = await fetch(`${base}/v1/tus/${id}`, { method: 'HEAD', headers: { ...auth, ...tus } });
  expect(res.status).toBe(200);
  return Number(res.headers.get('upload-offset'));
};

/** Runs a tus-js-client upload to its end: the upload URL on success, the error otherwise. */
function run(upload: Upload): Promise<{ url: string } | { error: Error & { originalResponse?: HttpResponse | null } }> {
  return new Promise((resolve) => {
    upload.options.onSuccess = () => resolve({ url: upload.url! });
    upload.options.onError = (error) => resolve({ error });
    upload.start();
  });
}

/**
 * What docs/deploy.md tells tus-js-client and Uppy users to do (the page does the same, one upload
 * at a time): learn each upload's Machine from its answers, send it with that upload's requests.
 * `forced` records what was sent where.
 */
function flyRouting(): Pick<UploadOptions, 'onBeforeRequest' | 'onAfterResponse'> & { forced: string[] } {
  const held = new Map<string, string>();
  const idOf = (url: string) => url.split('/').pop()!;
  const forced: string[] = [];
  return {
    forced,
    onBeforeRequest(req: HttpRequest) {
      const machine = held.get(idOf(req.getURL()));
      if (machine) {
        req.setHeader('fly-force-instance-id', machine);
        forced.push(`${req.getMethod()} ${machine}`);
      }
    },
    onAfterResponse(req: HttpRequest, res: HttpResponse) {
      const machine = res.getHeader('Stowage-Machine');
      if (machine) held.set(idOf(res.getHeader('Location') || req.getURL()), machine);
    },
  };
}

it('names the Machine on creation; HEAD, DELETE and small PATCHes on the other Machine are replayed there, never twice', async () => {
  const { id, machine: named } = await create(machines[IAD], 3 * MiB);
  expect(named).toBe(IAD);

  const small = randomBytes(100 * 1024);
  for (const res of [
    await fetch(`${machines[CDG]}/v1/tus/${id}`, { method: 'HEAD', headers: { ...auth, ...tus } }),
    await patch(machines[CDG], id, 0, small),
    await fetch(`${machines[CDG]}/v1/tus/${id}`, { method: 'DELETE', headers: { ...auth, ...tus } }),
  ]) {
    expect(res.status).toBe(409);
    expect(res.headers.get('fly-replay')).toBe(`instance=${IAD}`);
    expect((await res.arrayBuffer()).byteLength).toBe(0);
  }
  // Nothing was taken or removed on the wrong Machine, and the upload is whole on iad.
  expect(await offsetOn(machines[IAD], id)).toBe(0);

  // A request that already is a replay is refused, not bounced again.
  const replayed = { 'fly-replay-src': `instance=${IAD};region=iad;t=1` };
  const head = await fetch(`${machines[CDG]}/v1/tus/${id}`, { method: 'HEAD', headers: { ...auth, ...tus, ...replayed } });
  expect(head.status).toBe(409);
  expect(head.headers.get('fly-replay')).toBeNull();
  const again = await patch(machines[CDG], id, 0, small, replayed);
  expect(again.status).toBe(421);
  expect(again.headers.get('fly-replay')).toBeNull();
  expect(((await again.json()) as { error: { code: string } }).error.code).toBe('upload_elsewhere');

  // On iad itself the answers name iad and the chunk is taken.
  const here = await patch(machines[IAD], id, 0, small);
  expect(here.status).toBe(204);
  expect(here.headers.get('stowage-machine')).toBe(IAD);
  expect(await offsetOn(machines[IAD], id)).toBe(small.length);
});

it('refuses a PATCH too large to replay on the wrong Machine (421 upload_elsewhere) before storing a byte, and loses nothing', async () => {
  const data = randomBytes(4 * MiB);
  const { id } = await create(machines[IAD], data.length);
  expect((await patch(machines[IAD], id, 0, data.subarray(0, MiB))).status).toBe(204);

  const wrong = await patch(machines[CDG], id, MiB, data.subarray(MiB, 3 * MiB));
  expect(wrong.status).toBe(421);
  expect(wrong.headers.get('fly-replay')).toBeNull();
  expect(wrong.headers.get('stowage-machine')).toBe(IAD);
  const { error } = (await wrong.json()) as { error: { code: string; message: string; requestId: string } };
  expect(error.code).toBe('upload_elsewhere');
  expect(error.message).toContain(`fly-force-instance-id: ${IAD}`);
  expect(error.requestId).toBeTruthy();
  // Nothing landed on cdg's volume, and iad still has the first MiB and goes on from there.
  expect(await listFilesDeep(path.join(dir, CDG, 'files', '.tus'))).toEqual([]);
  expect(await offsetOn(machines[IAD], id)).toBe(MiB);
  expect((await patch(machines[IAD], id, MiB, data.subarray(MiB))).status).toBe(204);
  const stored = await fetch(`${machines[IAD]}/v1/files/${id}/content`, { headers: auth });
  expect(sha256(Buffer.from(await stored.arrayBuffer()))).toBe(sha256(data));
  // Finished, it is a file: any Machine answers for it from the catalog.
  const finished = await patch(machines[CDG], id, 0, data.subarray(0, 2 * MiB));
  expect(finished.status).toBe(409);
  expect(((await finished.json()) as { error: { code: string } }).error.code).toBe('upload_finished');
  const head = await fetch(`${machines[CDG]}/v1/tus/${id}`, { method: 'HEAD', headers: { ...auth, ...tus } });
  expect([head.status, head.headers.get('upload-offset')]).toEqual([200, String(data.length)]);
});

it('lets a browser app on another origin send the tus and fly-force-instance-id headers and read Stowage-Machine (CORS)', async () => {
  const pre = await fetch(`${machines[IAD]}/v1/tus/0123456789abcdef0123456789abcdef`, {
    method: 'OPTIONS',
    headers: { Origin: APP_ORIGIN, 'Access-Control-Request-Method': 'PATCH', 'Access-Control-Request-Headers': 'authorization,tus-resumable,upload-offset,upload-checksum,content-type,fly-force-instance-id' },
  });
  expect(pre.status).toBe(204);
  expect(pre.headers.get('access-control-allow-origin')).toBe(APP_ORIGIN);
  expect(pre.headers.get('access-control-allow-methods')?.split(',')).toEqual(expect.arrayContaining(['PATCH', 'HEAD', 'DELETE']));
  expect(pre.headers.get('access-control-allow-headers')?.toLowerCase().split(',')).toEqual(
    expect.arrayContaining(['tus-resumable', 'upload-length', 'upload-metadata', 'upload-offset', 'upload-checksum', 'fly-force-instance-id']),
  );
  const created = await fetch(`${machines[IAD]}/v1/tus`, { method: 'POST', headers: { ...auth, ...tus, Origin: APP_ORIGIN, 'Upload-Length': '5' } });
  expect(created.status).toBe(201);
  expect(created.headers.get('access-control-allow-origin')).toBe(APP_ORIGIN);
  expect(created.headers.get('stowage-machine')).toBe(IAD);
  expect(created.headers.get('access-control-expose-headers')?.toLowerCase().split(/,\s*/)).toEqual(expect.arrayContaining(['location', 'upload-offset', 'stowage-machine']));
});

describe('through a stand-in for Fly\'s proxy, which sends the chunks to the other Machine', () => {
  const options = (data: Buffer, chunkSize: number): UploadOptions => ({
    endpoint: `${proxy.url}/v1/tus`,
    chunkSize,
    retryDelays: null,
    headers: auth,
    metadata: { filename: 'big.bin', filetype: 'application/octet-stream' },
    uploadSize: data.length,
  });

  it('a client that sends fly-force-instance-id completes, also after a "reload" that learns the Machine from HEAD', async () => {
    const data = randomBytes(10 * MiB);
    const first = flyRouting();
    let upload!: Upload;
    let stopped = false;
    const paused = new Promise<void>((resolve) => {
      upload = new Upload(data, {
        ...options(data, 2 * MiB),
        ...first,
        onChunkComplete: (_size, accepted) => {
          if (accepted < 4 * MiB || stopped) return;
          stopped = true;
          void upload.abort().then(resolve);
        },
      });
    });
    upload.start();
    await paused;
    expect(first.forced[0]).toBe(`PATCH ${IAD}`);
    const url = upload.url!;
    const id = url.split('/').pop()!;

    // A reload: a new client knows the upload URL only. Its HEAD lands on cdg and is replayed.
    const second = flyRouting();
    const resumed = new Upload(data, { ...options(data, 2 * MiB), ...second, uploadUrl: url });
    expect(await run(resumed)).toEqual({ url });
    expect(second.forced[0]).toBe(`PATCH ${IAD}`);

    const record = (await (await fetch(`${proxy.url}/v1/files/${id}`, { headers: auth })).json()) as Record<string, unknown>;
    expect(record).toMatchObject({ status: 'ready', size: data.length, sha256: sha256(data) });
    const content = await fetch(`${proxy.url}/v1/files/${id}/content`, { headers: auth });
    expect(sha256(Buffer.from(await content.arrayBuffer()))).toBe(sha256(data));
    expect(await listFilesDeep(path.join(dir, CDG, 'files', '.tus'))).toEqual([]);
  });

  it('a client that does not is refused with a clear error on its first large chunk; with small chunks Fly replays each one', async () => {
    const data = randomBytes(3 * MiB);
    const refused = new Upload(data, options(data, 2 * MiB));
    const outcome = await run(refused);
    expect('error' in outcome && outcome.error.originalResponse?.getStatus()).toBe(421);
    if ('error' in outcome) expect(JSON.parse(outcome.error.originalResponse!.getBody())).toMatchObject({ error: { code: 'upload_elsewhere' } });
    expect(await offsetOn(machines[IAD], refused.url!.split('/').pop()!)).toBe(0);

    const replayed = new Upload(data, options(data, 512 * 1024));
    const done = await run(replayed);
    expect(done).toEqual({ url: replayed.url });
    const content = await fetch(`${proxy.url}/v1/files/${replayed.url!.split('/').pop()}/content`, { headers: auth });
    expect(sha256(Buffer.from(await content.arrayBuffer()))).toBe(sha256(data));
  });
});
