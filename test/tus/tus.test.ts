import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { type HttpRequest, Upload } from 'tus-js-client';
import { listFilesDeep, makeTempDir, untilFileSize } from '../helpers/tmp';
import { bearer, createKeyWithCli, freePort, runService, type ServiceProcess } from '../helpers/service';
import { s3Env } from '../helpers/s3env';
import { startS3Server, type S3TestBucket, type S3TestServer } from '../helpers/s3server';
import { type S3ErrorAnswer, startS3ErrorRelay } from '../helpers/s3-error-relay';
import { startPostgres } from '../helpers/postgres';
import Database from 'better-sqlite3';

const MiB = 1024 * 1024;
let base: string;
const running: ServiceProcess[] = [];
let s3: S3TestServer | undefined;

beforeAll(async () => {
  base = await makeTempDir('stowage-tus-');
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop()));
});
afterAll(async () => {
  await s3?.close();
  await fsp.rm(base, { recursive: true, force: true });
});

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** A built server (on a volume unless `extra` says otherwise) in its own directory, with write keys for alice and bob. */
async function volumeServer(name: string, extra: Record<string, string> = {}) {
  const dir = path.join(base, name);
  // Its own temp directory: the doctor (run with no grace) must not see other processes' leftovers in /tmp.
  await fsp.mkdir(path.join(dir, 'tmp'), { recursive: true });
  const port = await freePort();
  const env = { HOME: dir, TMPDIR: path.join(dir, 'tmp'), STORAGE: 'volume', STORAGE_PATH: path.join(dir, 'files'), PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info', ...extra };
  const alice = await createKeyWithCli(env, 'alice', 'write', { cwd: dir });
  const bob = await createKeyWithCli(env, 'bob', 'write', { cwd: dir });
  const start = async () => {
    const svc = runService(['serve'], { cwd: dir, env });
    running.push(svc);
    await svc.waitFor((l) => l.msg === 'listening');
    return svc;
  };
  return { dir, env, url: `http://127.0.0.1:${port}`, endpoint: `http://127.0.0.1:${port}/v1/tus`, alice, bob, start };
}

/** Runs a tus-js-client upload to its end: the upload URL on success, the error otherwise. */
function run(upload: Upload): Promise<{ url: string } | { error: Error }> {
  return new Promise((resolve) => {
    upload.options.onSuccess = () => resolve({ url: upload.url! });
    upload.options.onError = (error) => resolve({ error });
    upload.start();
  });
}

const tusHeaders = { 'Tus-Resumable': '1.0.0' };

describe('resumable uploads (tus): resuming on the built server after it is killed, on a volume and on S3', () => {
  it('resumes a 64 MiB upload from the server\'s offset after the server is killed, and the file is ready with the right sha256', async () => {
    const srv = await volumeServer('resume');
    let partial: fs.Stats | undefined;
    const id = await resumesAfterKill(srv, undefined, async (id) => {
      partial = await fsp.stat(path.join(srv.dir, 'files', '.tus', id));
    });
    // The sha256 was computed as the chunks came, across the restart: the finished bytes were
    // moved into place (the same inode), never read or copied.
    const stored = await fsp.stat(path.join(srv.dir, 'files', id.slice(0, 2), id));
    expect(stored.ino).toBe(partial!.ino);
    // The tus copy is gone once the file is stored.
    expect(await listFilesDeep(path.join(srv.dir, 'files', '.tus'))).toEqual([]);
  });

  it('does the same on the S3 store (a multipart upload per tus upload), leaving no upload or object behind', async () => {
    s3 ??= await startS3Server();
    const srv = await volumeServer('resume-s3', s3Env(s3));
    const id = await resumesAfterKill(srv);
    // The bucket holds the file alone: nothing left under .tus/, and no multipart upload.
    expect(await s3.objectKeys()).toEqual([`${id.slice(0, 2)}/${id}`]);
    expect(await s3.inProgressUploads()).toEqual([]);
  });

  it('has the doctor report, and --fix abort, an S3 resumable upload whose record is gone', async () => {
    s3 ??= await startS3Server();
    const bucket = await s3.newBucket();
    const srv = await volumeServer('s3-leftover', s3Env(bucket));
    const svc = await srv.start();
    const created = await fetch(srv.endpoint, { method: 'POST', headers: { ...bearer(srv.alice), ...tusHeaders, 'Upload-Length': String(6 * MiB) } });
    const url = new URL(created.headers.get('location')!, srv.endpoint).href;
    const id = url.split('/').pop()!;
    const sent = await fetch(url, {
      method: 'PATCH',
      headers: { ...bearer(srv.alice), ...tusHeaders, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' },
      body: randomBytes(5 * MiB),
    });
    expect(sent.status).toBe(204);
    await svc.stop();
    // While its record is pending, the upload is in progress, however old.
    const doctor = async (...args: string[]) => {
      const run = runService(['doctor', '--grace', '0s', '--json', ...args], { cwd: srv.dir, env: srv.env });
      await run.exited;
      return JSON.parse(run.lines.map((l) => (l.msg === undefined ? JSON.stringify(l) : l.msg)).join('\n')) as { problems: { kind: string; key?: string }[] };
    };
    expect((await doctor()).problems).toEqual([]);

    // The record gone (as when the expiry sweep removed it but could not reach the bucket).
    const db = new Database(path.join(srv.dir, 'files', '..', 'stowage.db'));
    db.prepare('delete from files where id = ?').run(id);
    db.close();
    // Its multipart upload, and the info @tus/s3-store keeps beside it, both left behind.
    expect((await doctor()).problems).toEqual([
      expect.objectContaining({ kind: 'incomplete_upload', key: `.tus/${id}` }),
      expect.objectContaining({ kind: 'tus_leftover', store: 's3', key: `.tus/${id}`, fileId: id, reason: expect.stringContaining('no record') }),
    ]);
    await doctor('--fix');
    expect(await bucket.inProgressUploads()).toEqual([]);
    expect((await bucket.objectKeys()).filter((k) => k.startsWith('.tus/'))).toEqual([]);
  });

  it('on S3, copies a finished upload hashed on the way in to its key in the bucket (across a kill, and an incomplete part), never downloading it', async () => {
    s3 ??= await startS3Server();
    const bucket = await s3.newBucket();
    const calls = await recordS3Calls(bucket);
    const srv = await volumeServer('s3-unread', s3Env(bucket, { S3_ENDPOINT: calls.endpoint }));
    try {
      let svc = await srv.start();
      const data = randomBytes(12 * MiB);
      const { url, id } = await createUpload(srv, data.length);
      // 3 MiB, less than a part: @tus/s3-store keeps it as an incomplete part (`.part` object).
      expect((await patch(srv, url, 0, data.subarray(0, 3 * MiB))).status).toBe(204);
      expect(await bucket.objectKeys()).toContain(`.tus/${id}.part`);
      // Killed between two PATCHes: what it hashed was saved with the offset.
      svc.child.kill('SIGKILL');
      await svc.exited;
      svc = await srv.start();
      expect((await patch(srv, url, 3 * MiB, data.subarray(3 * MiB))).status).toBe(204);

      const record = await (await fetch(`${srv.url}/v1/files/${id}`, { headers: bearer(srv.alice) })).json();
      expect(record).toMatchObject({ status: 'ready', size: data.length, sha256: sha256(data) });
      const content = Buffer.from(await (await fetch(`${srv.url}/v1/files/${id}/content`, { headers: bearer(srv.alice) })).arrayBuffer());
      expect(sha256(content)).toBe(sha256(data));
      // The bucket copied the object (CopyObject); stowage never asked for its bytes.
      expect(calls.objectReads(`.tus/${id}`)).toBe(0);
      expect(calls.copies(`.tus/${id}`)).toBe(1);
      expect(await bucket.objectKeys()).toEqual([`${id.slice(0, 2)}/${id}`]);
      expect(await bucket.inProgressUploads()).toEqual([]);
      await svc.stop();
    } finally {
      await calls.close();
    }
  });

  it('on S3, reads a finished upload once when the bucket refuses to copy it (a provider without CopyObject), and the file is ready', async () => {
    s3 ??= await startS3Server();
    const bucket = await s3.newBucket();
    const calls = await recordS3Calls(bucket, (req) =>
      req.method === 'PUT' && req.headers['x-amz-copy-source'] !== undefined ? { status: 501, code: 'NotImplemented', message: 'not here' } : undefined,
    );
    const srv = await volumeServer('s3-no-copy', s3Env(bucket, { S3_ENDPOINT: calls.endpoint }));
    try {
      const svc = await srv.start();
      const data = randomBytes(6 * MiB);
      const { url, id } = await createUpload(srv, data.length);
      expect((await patch(srv, url, 0, data)).status).toBe(204);
      const record = await (await fetch(`${srv.url}/v1/files/${id}`, { headers: bearer(srv.alice) })).json();
      expect(record).toMatchObject({ status: 'ready', size: data.length, sha256: sha256(data) });
      expect(calls.objectReads(`.tus/${id}`)).toBe(1);
      expect(await bucket.objectKeys()).toEqual([`${id.slice(0, 2)}/${id}`]);
      await svc.waitFor((l) => l.msg === 'the bucket could not copy a finished tus upload: reading it instead');
      await svc.stop();
    } finally {
      await calls.close();
    }
  });

  it('on S3, reads a finished upload once when the server was killed mid-PATCH (its hash out of step), and the file has the right sha256', async () => {
    s3 ??= await startS3Server();
    const bucket = await s3.newBucket();
    const calls = await recordS3Calls(bucket);
    const srv = await volumeServer('s3-cut', s3Env(bucket, { S3_ENDPOINT: calls.endpoint }));
    try {
      let svc = await srv.start();
      const data = randomBytes(16 * MiB);
      const { url, id } = await createUpload(srv, data.length);
      expect((await patch(srv, url, 0, data.subarray(0, 5 * MiB))).status).toBe(204);

      // The next PATCH sends 7 of its 11 MiB and holds the rest back; the server is killed once
      // its second part is in the bucket, while it holds the next 2 MiB on its disk.
      const secondPart = calls.next((req, status) => req.method === 'PUT' && new URL(req.url!, 'http://x').searchParams.get('partNumber') === '2' && status === 200);
      const cut = http.request(url, { method: 'PATCH', headers: { ...patchHeaders(srv, 5 * MiB), 'Content-Length': String(11 * MiB) } });
      cut.on('error', () => undefined);
      cut.write(data.subarray(5 * MiB, 12 * MiB));
      await secondPart;
      svc.child.kill('SIGKILL');
      await svc.exited;
      svc = await srv.start();

      const head = await fetch(url, { method: 'HEAD', headers: { ...bearer(srv.alice), ...tusHeaders } });
      const offset = Number(head.headers.get('upload-offset'));
      expect(offset).toBe(10 * MiB);
      expect((await patch(srv, url, offset, data.subarray(offset))).status).toBe(204);

      const record = await (await fetch(`${srv.url}/v1/files/${id}`, { headers: bearer(srv.alice) })).json();
      expect(record).toMatchObject({ status: 'ready', size: data.length, sha256: sha256(data) });
      const content = Buffer.from(await (await fetch(`${srv.url}/v1/files/${id}/content`, { headers: bearer(srv.alice) })).arrayBuffer());
      expect(sha256(content)).toBe(sha256(data));
      // Its hash could not go on past the cut: the finished object was read once, to hash it.
      expect(calls.objectReads(`.tus/${id}`)).toBe(1);
      expect(await bucket.objectKeys()).toEqual([`${id.slice(0, 2)}/${id}`]);
      await svc.stop();
    } finally {
      await calls.close();
    }
  });

  it('on S3, gives the file the sha256 of the bytes stored when a kill lost the incomplete part the server had taken back, and the client sends other bytes there', async () => {
    s3 ??= await startS3Server();
    const bucket = await s3.newBucket();
    const calls = await recordS3Calls(bucket);
    const srv = await volumeServer('s3-lost-part', s3Env(bucket, { S3_ENDPOINT: calls.endpoint }));
    try {
      let svc = await srv.start();
      const data = randomBytes(12 * MiB);
      const { url, id } = await createUpload(srv, data.length);
      expect((await patch(srv, url, 0, data.subarray(0, 5 * MiB))).status).toBe(204);
      // 3 MiB more: kept as an incomplete part, hashed and saved up to 8 MiB.
      expect((await patch(srv, url, 5 * MiB, data.subarray(5 * MiB, 8 * MiB))).status).toBe(204);

      // The next PATCH makes the server take the incomplete part back (downloaded, then deleted
      // from the bucket) to send it on with the new bytes; it is killed before it stored them.
      const partTaken = calls.next((req) => req.method === 'DELETE' && new URL(req.url!, 'http://x').pathname === `/${bucket.bucket}/.tus/${id}.part`);
      const cut = http.request(url, { method: 'PATCH', headers: { ...patchHeaders(srv, 8 * MiB), 'Content-Length': String(4 * MiB) } });
      cut.on('error', () => undefined);
      cut.write(data.subarray(8 * MiB, 9 * MiB));
      await partTaken;
      svc.child.kill('SIGKILL');
      await svc.exited;
      svc = await srv.start();

      // The server has 5 MiB; this client sends other bytes from there on.
      const head = await fetch(url, { method: 'HEAD', headers: { ...bearer(srv.alice), ...tusHeaders } });
      expect(head.headers.get('upload-offset')).toBe(String(5 * MiB));
      const other = Buffer.concat([data.subarray(0, 5 * MiB), randomBytes(7 * MiB)]);
      expect((await patch(srv, url, 5 * MiB, other.subarray(5 * MiB, 8 * MiB))).status).toBe(204);
      expect((await patch(srv, url, 8 * MiB, other.subarray(8 * MiB))).status).toBe(204);

      const content = Buffer.from(await (await fetch(`${srv.url}/v1/files/${id}/content`, { headers: bearer(srv.alice) })).arrayBuffer());
      expect(sha256(content)).toBe(sha256(other));
      const record = await (await fetch(`${srv.url}/v1/files/${id}`, { headers: bearer(srv.alice) })).json();
      expect(record).toMatchObject({ status: 'ready', size: other.length, sha256: sha256(other) });
      await svc.stop();
    } finally {
      await calls.close();
    }
  });

  it('with two instances on PostgreSQL and S3, resumes on the other instance what the killed one received', async () => {
    s3 ??= await startS3Server();
    const bucket = await s3.newBucket();
    const pg = await startPostgres();
    try {
      const env = { ...s3Env(bucket), DATABASE_URL: await pg.createDatabase() };
      const a = await volumeServer('two-a', env);
      const b = await volumeServer('two-b', env);
      await b.start();
      const id = await resumesAfterKill(a, b);
      expect(await bucket.objectKeys()).toEqual([`${id.slice(0, 2)}/${id}`]);
      expect(await bucket.inProgressUploads()).toEqual([]);
    } finally {
      await Promise.all(running.splice(0).map((svc) => svc.stop()));
      await pg.stop();
    }
  });
});

type TestServer = Awaited<ReturnType<typeof volumeServer>>;

const patchHeaders = (srv: TestServer, offset: number) => ({
  ...bearer(srv.alice),
  ...tusHeaders,
  'Content-Type': 'application/offset+octet-stream',
  'Upload-Offset': String(offset),
});

async function createUpload(srv: TestServer, length: number): Promise<{ url: string; id: string }> {
  const created = await fetch(srv.endpoint, { method: 'POST', headers: { ...bearer(srv.alice), ...tusHeaders, 'Upload-Length': String(length) } });
  expect(created.status).toBe(201);
  const url = new URL(created.headers.get('location')!, srv.endpoint).href;
  return { url, id: url.split('/').pop()! };
}

const patch = (srv: TestServer, url: string, offset: number, body: Buffer) => fetch(url, { method: 'PATCH', headers: patchHeaders(srv, offset), body });

/**
 * A relay to `bucket` that records the calls made through it (the service's S3_ENDPOINT), and
 * answers those `refuse` picks with an S3 error.
 */
async function recordS3Calls(bucket: S3TestBucket, refuse: (req: http.IncomingMessage) => S3ErrorAnswer | undefined = () => undefined) {
  const done: { method: string; url: URL; copySource?: string }[] = [];
  const waiting: { when: (req: http.IncomingMessage, status: number) => boolean; resolve(): void }[] = [];
  const relay = await startS3ErrorRelay(
    bucket.endpoint,
    refuse,
    (req, status) => {
      const copySource = req.headers['x-amz-copy-source'];
      done.push({ method: req.method!, url: new URL(req.url!, 'http://relay'), copySource: typeof copySource === 'string' ? decodeURIComponent(copySource) : undefined });
      for (const w of waiting.splice(0)) if (w.when(req, status)) w.resolve(); else waiting.push(w);
    },
  );
  const objectPath = (key: string) => `/${bucket.bucket}/${key}`;
  return {
    endpoint: relay.endpoint,
    /** GetObject calls for `key` (not ListParts, a GET of the same path with an upload id). */
    objectReads: (key: string) => done.filter((c) => c.method === 'GET' && c.url.pathname === objectPath(key) && !c.url.searchParams.has('uploadId')).length,
    /** CopyObject calls from `key`. */
    copies: (key: string) => done.filter((c) => c.method === 'PUT' && c.copySource?.replace(/^\//, '') === `${bucket.bucket}/${key}`).length,
    /** Resolves once a call `when` picks has been answered. */
    next: (when: (req: http.IncomingMessage, status: number) => boolean) => new Promise<void>((resolve) => waiting.push({ when, resolve })),
    close: () => relay.close(),
  };
}

/**
 * The 64 MiB upload cut by a SIGKILL after three chunks and resumed on the restarted server, or
 * on `other` (sharing its catalog and bucket, already running); the file id.
 */
async function resumesAfterKill(srv: TestServer, other?: TestServer, beforeResume?: (id: string) => Promise<void>): Promise<string> {
  const svc = await srv.start();
  const data = randomBytes(64 * MiB);
  const common = { endpoint: srv.endpoint, chunkSize: 5 * MiB, headers: bearer(srv.alice), metadata: { filename: 'big.bin', filetype: 'application/octet-stream' } };

  let killed = false;
  const first = new Upload(data, {
    ...common,
    retryDelays: null,
    onChunkComplete: (_chunk, accepted) => {
      if (accepted >= 15 * MiB && !killed) {
        killed = true;
        svc.child.kill('SIGKILL');
      }
    },
  });
  const cut = await run(first);
  expect('error' in cut).toBe(true);
  await svc.exited;
  const id = first.url!.split('/').pop()!;
  const target = other ?? srv;
  const uploadUrl = `${target.endpoint}/${id}`;
  if (!other) await srv.start();
  await beforeResume?.(id);

  // Not listed as a ready file while unfinished.
  const listed = (await (await fetch(`${target.url}/v1/files`, { headers: bearer(srv.alice) })).json()) as { files: { id: string; status: string }[] };
  expect(listed.files.filter((f) => f.id === id && f.status === 'ready')).toEqual([]);

  const patchOffsets: number[] = [];
  const second = new Upload(data, {
    ...common,
    uploadUrl,
    retryDelays: null,
    onBeforeRequest: (req: HttpRequest) => {
      if (req.getMethod() === 'PATCH') patchOffsets.push(Number(req.getHeader('Upload-Offset')));
    },
  });
  const done = await run(second);
  expect(done).toEqual({ url: uploadUrl });
  // The client asked where to go on and continued from there, not from 0.
  expect(patchOffsets[0]).toBeGreaterThanOrEqual(15 * MiB);
  expect(patchOffsets[0]).toBeLessThan(64 * MiB);

  const record = (await (await fetch(`${target.url}/v1/files/${id}`, { headers: bearer(srv.alice) })).json()) as Record<string, unknown>;
  expect(record).toMatchObject({ id, name: 'big.bin', status: 'ready', size: data.length, sha256: sha256(data) });
  const content = Buffer.from(await (await fetch(`${target.url}/v1/files/${id}/content`, { headers: bearer(srv.alice) })).arrayBuffer());
  expect(sha256(content)).toBe(sha256(data));
  return id;
}

describe('resumable uploads (tus) against the built server', () => {

  it('refuses a chunk whose sha256 checksum does not match (460) without moving the offset; a matching one is taken', async () => {
    const srv = await volumeServer('checksum');
    await srv.start();
    const created = await fetch(srv.endpoint, { method: 'POST', headers: { ...bearer(srv.alice), ...tusHeaders, 'Upload-Length': '10' } });
    expect(created.status).toBe(201);
    const url = new URL(created.headers.get('location')!, srv.endpoint).href;
    const patch = (body: string, checksumOf: string) =>
      fetch(url, {
        method: 'PATCH',
        headers: {
          ...bearer(srv.alice),
          ...tusHeaders,
          'Content-Type': 'application/offset+octet-stream',
          'Upload-Offset': '0',
          'Upload-Checksum': `sha256 ${createHash('sha256').update(checksumOf).digest('base64')}`,
        },
        body,
      });
    const offset = async () => (await fetch(url, { method: 'HEAD', headers: { ...bearer(srv.alice), ...tusHeaders } })).headers.get('upload-offset');

    expect((await patch('0123456789', 'something else')).status).toBe(460);
    expect(await offset()).toBe('0');
    const ok = await patch('0123456789', '0123456789');
    expect(ok.status).toBe(204);
    expect(ok.headers.get('upload-offset')).toBe('10');
  });

  it('answers a second PATCH to an upload in progress with 409, and never interleaves the two bodies', async () => {
    const srv = await volumeServer('concurrent');
    await srv.start();
    const data = randomBytes(2 * MiB);
    const created = await fetch(srv.endpoint, { method: 'POST', headers: { ...bearer(srv.alice), ...tusHeaders, 'Upload-Length': String(data.length) } });
    const url = new URL(created.headers.get('location')!, srv.endpoint);
    const id = url.pathname.split('/').pop()!;
    const patchHeaders = (offset: number) => ({ ...bearer(srv.alice), ...tusHeaders, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': String(offset) });

    // The first PATCH sends half its body and holds the rest back.
    const first = http.request(url, { method: 'PATCH', headers: { ...patchHeaders(0), 'Content-Length': String(data.length) } });
    const firstAnswer = new Promise<number>((resolve) => {
      first.on('response', (res) => resolve(res.statusCode!));
      first.on('error', () => resolve(0));
    });
    first.write(data.subarray(0, MiB));
    const partial = path.join(srv.dir, 'files', '.tus', id);
    await untilFileSize(partial, (size) => size >= MiB);

    // A second PATCH from the same offset, with other bytes: refused, nothing of it stored.
    const other = randomBytes(data.length);
    const second = await fetch(url, { method: 'PATCH', headers: patchHeaders(0), body: other });
    expect(second.status).toBe(409);
    first.destroy();
    await firstAnswer;

    // The upload goes on from what the first one stored, and ends with the first one's bytes only.
    const head = await fetch(url, { method: 'HEAD', headers: { ...bearer(srv.alice), ...tusHeaders } });
    const offset = Number(head.headers.get('upload-offset'));
    expect(offset).toBeGreaterThanOrEqual(MiB);
    const rest = await fetch(url, { method: 'PATCH', headers: patchHeaders(offset), body: data.subarray(offset) });
    expect(rest.status).toBe(204);
    const content = Buffer.from(await (await fetch(`${srv.url}/v1/files/${id}/content`, { headers: bearer(srv.alice) })).arrayBuffer());
    expect(sha256(content)).toBe(sha256(data));
  });

  it('refuses (423) a PATCH on another instance while one instance writes the upload, and lets it go on afterwards', async () => {
    const pg = await startPostgres();
    try {
      const shared = path.join(base, 'locks-files');
      const env = { DATABASE_URL: await pg.createDatabase(), STORAGE_PATH: shared };
      const a = await volumeServer('locks-a', env);
      const b = await volumeServer('locks-b', env);
      await a.start();
      await b.start();
      const data = randomBytes(2 * MiB);
      const created = await fetch(a.endpoint, { method: 'POST', headers: { ...bearer(a.alice), ...tusHeaders, 'Upload-Length': String(data.length) } });
      const id = new URL(created.headers.get('location')!, a.endpoint).pathname.split('/').pop()!;
      const patchHeaders = (offset: number) => ({ ...bearer(a.alice), ...tusHeaders, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': String(offset) });

      const first = http.request(`${a.endpoint}/${id}`, { method: 'PATCH', headers: { ...patchHeaders(0), 'Content-Length': String(MiB) } });
      const firstAnswer = new Promise<number>((resolve, reject) => {
        first.on('response', (res) => resolve(res.statusCode!));
        first.on('error', reject);
      });
      first.write(data.subarray(0, MiB / 2));
      const partial = path.join(shared, '.tus', id);
      await untilFileSize(partial, (size) => size > 0);

      const other = await fetch(`${b.endpoint}/${id}`, { method: 'PATCH', headers: patchHeaders(0), body: randomBytes(MiB) });
      expect(other.status).toBe(423);
      first.end(data.subarray(MiB / 2, MiB));
      expect(await firstAnswer).toBe(204);
      const rest = await fetch(`${b.endpoint}/${id}`, { method: 'PATCH', headers: patchHeaders(MiB), body: data.subarray(MiB) });
      expect(rest.status).toBe(204);
      const content = Buffer.from(await (await fetch(`${b.url}/v1/files/${id}/content`, { headers: bearer(a.alice) })).arrayBuffer());
      expect(sha256(content)).toBe(sha256(data));
    } finally {
      await Promise.all(running.splice(0).map((svc) => svc.stop()));
      await pg.stop();
    }
  });

  it('counts a PATCH in flight among the client\'s uploads (UPLOADS_PER_CLIENT): one more is answered 503 busy until it ends', async () => {
    const srv = await volumeServer('slots', { UPLOADS_PER_CLIENT: '1' });
    await srv.start();
    const create = async () => {
      const created = await fetch(srv.endpoint, { method: 'POST', headers: { ...bearer(srv.alice), ...tusHeaders, 'Upload-Length': String(MiB) } });
      return new URL(created.headers.get('location')!, srv.endpoint);
    };
    const [one, two] = [await create(), await create()];
    const patchHeaders = { ...bearer(srv.alice), ...tusHeaders, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' };
    const data = randomBytes(MiB);

    const first = http.request(one, { method: 'PATCH', headers: { ...patchHeaders, 'Content-Length': String(MiB) } });
    const firstAnswer = new Promise<number>((resolve, reject) => {
      first.on('response', (res) => resolve(res.statusCode!));
      first.on('error', reject);
    });
    first.write(data.subarray(0, MiB / 2));
    const partial = path.join(srv.dir, 'files', '.tus', one.pathname.split('/').pop()!);
    await untilFileSize(partial, (size) => size > 0);

    const busy = await fetch(two, { method: 'PATCH', headers: patchHeaders, body: data });
    expect(busy.status).toBe(503);
    expect(((await busy.json()) as { error: { code: string } }).error.code).toBe('busy');
    first.end(data.subarray(MiB / 2));
    expect(await firstAnswer).toBe(204);
    expect((await fetch(two, { method: 'PATCH', headers: patchHeaders, body: data })).status).toBe(204);
  });

  it('mirrors a finished upload like any other file (STORAGE_MIRROR)', async () => {
    s3 ??= await startS3Server();
    const bucket = await s3.newBucket();
    const { STORAGE: _primary, ...mirrorEnv } = s3Env(bucket);
    const srv = await volumeServer('mirror', { ...mirrorEnv, STORAGE_MIRROR: 's3' });
    const svc = await srv.start();
    const data = randomBytes(6 * MiB);
    const done = await run(new Upload(data, { endpoint: srv.endpoint, chunkSize: 5 * MiB, headers: bearer(srv.alice), retryDelays: null }));
    if (!('url' in done)) throw done.error;
    const id = done.url.split('/').pop()!;
    await svc.waitFor((l) => l.fileId === id && l.outcome === 'copied');
    expect(await bucket.objectKeys()).toEqual([`${id.slice(0, 2)}/${id}`]);
  });

  it('finishes on the next HEAD an upload whose last PATCH could not store the file', async () => {
    const srv = await volumeServer('finish-later');
    await srv.start();
    const created = await fetch(srv.endpoint, { method: 'POST', headers: { ...bearer(srv.alice), ...tusHeaders, 'Upload-Length': '11' } });
    const url = new URL(created.headers.get('location')!, srv.endpoint).href;
    const id = url.split('/').pop()!;
    // A file where the blob's directory goes: storing the finished upload fails, as when the
    // process stopped after the last byte.
    const blocker = path.join(srv.dir, 'files', id.slice(0, 2));
    await fsp.writeFile(blocker, '');
    const last = await fetch(url, {
      method: 'PATCH',
      headers: { ...bearer(srv.alice), ...tusHeaders, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' },
      body: 'hello world',
    });
    expect(last.status).toBe(500);
    expect(((await (await fetch(`${srv.url}/v1/files/${id}`, { headers: bearer(srv.alice) })).json()) as { status: string }).status).toBe('pending');

    await fsp.rm(blocker);
    const head = await fetch(url, { method: 'HEAD', headers: { ...bearer(srv.alice), ...tusHeaders } });
    expect(head.status).toBe(200);
    expect(head.headers.get('upload-offset')).toBe('11');
    const record = await (await fetch(`${srv.url}/v1/files/${id}`, { headers: bearer(srv.alice) })).json();
    expect(record).toMatchObject({ status: 'ready', size: 11, sha256: sha256(Buffer.from('hello world')) });
  });

  it('answers 404 for another owner\'s upload URL, and refuses a creation past the size limit (413) or of a type not allowed (415) before storing anything', async () => {
    const srv = await volumeServer('owners', { MAX_UPLOAD_BYTES: '1mb', ALLOWED_CONTENT_TYPES: 'image/*,application/octet-stream' });
    await srv.start();
    const created = await fetch(srv.endpoint, { method: 'POST', headers: { ...bearer(srv.alice), ...tusHeaders, 'Upload-Length': '5' } });
    const url = new URL(created.headers.get('location')!, srv.endpoint).href;

    for (const method of ['HEAD', 'PATCH', 'DELETE']) {
      const res = await fetch(url, {
        method,
        headers: { ...bearer(srv.bob), ...tusHeaders, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' },
        body: method === 'PATCH' ? 'hello' : undefined,
      });
      expect(res.status).toBe(404);
    }
    // Alice's upload is untouched by bob's attempts.
    const head = await fetch(url, { method: 'HEAD', headers: { ...bearer(srv.alice), ...tusHeaders } });
    expect(head.status).toBe(200);
    expect(head.headers.get('upload-offset')).toBe('0');

    const before = await listFilesDeep(path.join(srv.dir, 'files'));
    const tooBig = await fetch(srv.endpoint, { method: 'POST', headers: { ...bearer(srv.alice), ...tusHeaders, 'Upload-Length': String(2 * MiB) } });
    expect(tooBig.status).toBe(413);
    expect(((await tooBig.json()) as { error: { code: string } }).error.code).toBe('file_too_large');
    const text = Buffer.from('text/plain').toString('base64');
    const wrongType = await fetch(srv.endpoint, { method: 'POST', headers: { ...bearer(srv.alice), ...tusHeaders, 'Upload-Length': '5', 'Upload-Metadata': `filetype ${text}` } });
    expect(wrongType.status).toBe(415);
    expect(await listFilesDeep(path.join(srv.dir, 'files'))).toEqual(before);
  });

  it('takes uploads from an upload link\'s session within the link\'s limits, as files of the link\'s owner', async () => {
    const srv = await volumeServer('link');
    await srv.start();
    const made = await fetch(`${srv.url}/v1/upload-links`, {
      method: 'POST',
      headers: { ...bearer(srv.alice), 'Content-Type': 'application/json' },
      body: JSON.stringify({ expiresIn: '1h', maxBytes: 1000, maxFiles: 1, allowedTypes: ['text/plain'] }),
    });
    const { pageUrl } = (await made.json()) as { pageUrl: string };
    const opened = await fetch(pageUrl, { redirect: 'manual' });
    const cookie = opened.headers.get('set-cookie')!.split(';')[0];
    const session = { Cookie: cookie, ...tusHeaders };
    const text = `filetype ${Buffer.from('text/plain').toString('base64')}`;

    const tooBig = await fetch(srv.endpoint, { method: 'POST', headers: { ...session, 'Upload-Length': '2000', 'Upload-Metadata': text } });
    expect(tooBig.status).toBe(413);
    expect(((await tooBig.json()) as { error: { message: string } }).error.message).toContain('upload link');
    const created = await fetch(srv.endpoint, { method: 'POST', headers: { ...session, 'Upload-Length': '5', 'Upload-Metadata': text } });
    expect(created.status).toBe(201);
    const url = new URL(created.headers.get('location')!, srv.endpoint).href;
    const sent = await fetch(url, { method: 'PATCH', headers: { ...session, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' }, body: 'hello' });
    expect(sent.status).toBe(204);
    const record = await (await fetch(`${srv.url}/v1/files/${url.split('/').pop()}`, { headers: bearer(srv.alice) })).json();
    expect(record).toMatchObject({ status: 'ready', size: 5, contentType: 'text/plain', sha256: sha256(Buffer.from('hello')) });
  });

  it('has the doctor report, and --fix remove, what uploads nothing will finish left in STORAGE_PATH/.tus, and leave one in progress alone', async () => {
    const srv = await volumeServer('volume-leftovers');
    const svc = await srv.start();
    const begin = async (sent: number) => {
      const created = await fetch(srv.endpoint, { method: 'POST', headers: { ...bearer(srv.alice), ...tusHeaders, 'Upload-Length': String(2 * MiB) } });
      const id = created.headers.get('location')!.split('/').pop()!;
      const res = await fetch(`${srv.endpoint}/${id}`, {
        method: 'PATCH',
        headers: { ...bearer(srv.alice), ...tusHeaders, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' },
        body: randomBytes(sent),
      });
      expect(res.status).toBe(204);
      return id;
    };
    const [inProgress, recordGone, expired] = [await begin(MiB), await begin(MiB), await begin(512 * 1024)];
    await svc.stop();
    // One whose record was removed by hand, one past its expiry that no sweep removed (no server running).
    const db = new Database(path.join(srv.dir, 'stowage.db'));
    db.prepare('delete from files where id = ?').run(recordGone);
    db.prepare('update files set expires_at = ? where id = ?').run(new Date(Date.now() - 60_000).toISOString(), expired);
    db.close();
    const tusDir = path.join(srv.dir, 'files', '.tus');
    const doctor = async (...args: string[]) => {
      const run = runService(['doctor', ...args], { cwd: srv.dir, env: srv.env });
      const code = await run.exited;
      return { code, lines: run.lines.map((l) => (l.msg === undefined ? JSON.stringify(l) : String(l.msg))) };
    };
    type Report = { problems: { kind: string; fileId?: string; key?: string; bytes?: number; reason: string }[]; summary: Record<string, number> };

    // Younger than the default grace period (1 h): nothing yet.
    const young = JSON.parse((await doctor('--json')).lines.join('\n')) as Report;
    expect(young.problems.filter((p) => p.kind === 'tus_leftover')).toEqual([]);

    const { code, lines } = await doctor('--grace', '0s', '--json');
    expect(code).toBe(1);
    const report = JSON.parse(lines.join('\n')) as Report;
    const leftovers = report.problems.filter((p) => p.kind === 'tus_leftover');
    expect(leftovers).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ fileId: recordGone, key: `.tus/${recordGone}`, reason: expect.stringContaining('no record') }),
        expect.objectContaining({ fileId: expired, key: `.tus/${expired}`, reason: expect.stringContaining('TUS_EXPIRY') }),
      ]),
    );
    expect(leftovers).toHaveLength(2);
    expect(leftovers.find((p) => p.fileId === recordGone)!.bytes).toBeGreaterThanOrEqual(MiB);
    expect(report.summary.tusLeftovers).toBe(2);
    const text = (await doctor('--grace', '0s')).lines.join('\n');
    expect(text).toContain(`resumable upload leftover: `);
    expect(text).toContain(`at volume:.tus/${recordGone}, last written`);
    expect(text).toMatch(/resumable upload leftovers: 2 \(/);

    const fixed = JSON.parse((await doctor('--grace', '0s', '--json', '--fix')).lines.join('\n')) as Report & { actions: { action: string; problem: { kind: string; fileId?: string } }[] };
    expect(fixed.actions.filter((a) => a.problem.kind === 'tus_leftover').map((a) => [a.action, a.problem.fileId]).sort()).toEqual(
      [['removed', recordGone], ['removed', expired]].sort(),
    );
    // The upload in progress keeps its bytes and goes on where it was.
    expect((await fsp.readdir(tusDir)).sort()).toEqual([inProgress, `${inProgress}.json`]);
    await srv.start();
    const head = await fetch(`${srv.endpoint}/${inProgress}`, { method: 'HEAD', headers: { ...bearer(srv.alice), ...tusHeaders } });
    expect(head.headers.get('upload-offset')).toBe(String(MiB));
  });

  it('removes an unfinished upload, record and bytes, once it is past TUS_EXPIRY', async () => {
    const srv = await volumeServer('expiry', { TUS_EXPIRY: '2s', DIRECT_UPLOAD_EXPIRES_S: '1', LOG_LEVEL: 'debug' });
    const svc = await srv.start();
    const created = await fetch(srv.endpoint, { method: 'POST', headers: { ...bearer(srv.alice), ...tusHeaders, 'Upload-Length': '10' } });
    const url = new URL(created.headers.get('location')!, srv.endpoint).href;
    const id = url.split('/').pop()!;
    const half = await fetch(url, {
      method: 'PATCH',
      headers: { ...bearer(srv.alice), ...tusHeaders, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' },
      body: '01234',
    });
    expect(half.status).toBe(204);
    const tusDir = path.join(srv.dir, 'files', '.tus');
    expect((await listFilesDeep(tusDir)).length).toBeGreaterThan(0);

    await svc.waitFor((l) => l.fileId === id && l.outcome === 'expired');
    await svc.waitFor((l) => l.msg === 'leftover sweep' && Number(l.expiredTusUploads) > 0);
    expect(await listFilesDeep(tusDir)).toEqual([]);
    expect((await fetch(`${srv.url}/v1/files/${id}`, { headers: bearer(srv.alice) })).status).toBe(404);
    expect((await fetch(url, { method: 'HEAD', headers: { ...bearer(srv.alice), ...tusHeaders } })).status).toBe(404);
    // Every sweep went through, the first one (at start-up, before any upload) included.
    expect(svc.lines.filter((l) => String(l.msg).endsWith('failed; will retry'))).toEqual([]);
  });
});
