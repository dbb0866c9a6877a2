import fsp from 'node:fs/promises';
import path from 'node:path';
import { StoreUnavailable } from '../../src/errors';
import { S3Store } from '../../src/storage/s3';
import { closedPort, type FakeEndpoint, startBlackHole, startNotS3, startUnconnectable } from '../helpers/black-hole';
import { runService } from '../helpers/service';
import { chunked } from '../helpers/streams';
import { makeTempDir } from '../helpers/tmp';

/**
 * S3 endpoints that fail in the ways networks do: one that accepts connections and never answers
 * (a black hole), one where connections never complete, one that refuses, and one that answers
 * but is not S3. Every S3 call has connect and request timeouts; the start-up probe fails within
 * them with one line naming S3_ENDPOINT and the step that failed.
 */

let dir: string;
const endpoints: FakeEndpoint[] = [];
beforeEach(async () => {
  dir = await makeTempDir('stowage-s3-faults-');
});
afterEach(async () => {
  await Promise.all(endpoints.splice(0).map((e) => e.close()));
  await fsp.rm(dir, { recursive: true, force: true });
});

async function track<T extends FakeEndpoint | undefined>(endpoint: Promise<T>): Promise<T> {
  const e = await endpoint;
  if (e) endpoints.push(e);
  return e;
}

const s3Env = (endpoint: string) => ({
  STORAGE: 's3',
  S3_BUCKET: 'stowage',
  S3_ENDPOINT: endpoint,
  S3_FORCE_PATH_STYLE: 'true',
  S3_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'test',
  AWS_SECRET_ACCESS_KEY: 'test-secret',
});

/**
 * Starts `stowage serve` and waits for it to exit (killing it after `withinMs`). Resolves with
 * how long it took and the lines it printed after "stowage: cannot start".
 */
async function startup(env: Record<string, string>, withinMs: number) {
  const started = Date.now();
  const svc = runService(['serve'], { cwd: dir, env: { STORAGE_PATH: path.join(dir, 'files'), PORT: '0', ...env } });
  const timer = setTimeout(() => svc.child.kill('SIGKILL'), withinMs);
  const code = await svc.exited;
  clearTimeout(timer);
  const at = svc.stderr.indexOf('stowage: cannot start');
  return { code, ms: Date.now() - started, problems: at < 0 ? svc.stderr : svc.stderr.slice(at + 1), stderr: svc.stderr };
}

describe('start-up against a broken S3 endpoint (the built server)', () => {
  it('a black hole fails start-up within the timeouts, with one line naming S3_ENDPOINT', async () => {
    const hole = await track(startBlackHole());
    const { code, ms, problems } = await startup({ ...s3Env(hole.endpoint), S3_CONNECT_TIMEOUT_MS: '500', S3_REQUEST_TIMEOUT_MS: '1500' }, 20_000);
    expect(code).toBe(1);
    expect(problems).toEqual([
      `  S3_ENDPOINT: ${hole.endpoint} accepted the connection but sent no answer within 1.5 s (S3_REQUEST_TIMEOUT_MS) while writing a probe object to bucket "stowage" (check S3_ENDPOINT, or unset it to use AWS S3)`,
    ]);
    // The probe is not retried: one attempt, well within a few times the timeout.
    expect(ms).toBeLessThan(8000);
    expect(hole.connections()).toBe(1);
  });

  it('with the default timeouts a black hole fails start-up after S3_REQUEST_TIMEOUT_MS (30 s), not never', async () => {
    const hole = await track(startBlackHole());
    const { code, ms, problems } = await startup(s3Env(hole.endpoint), 50_000);
    expect(code).toBe(1);
    expect(problems).toEqual([expect.stringMatching(/^ {2}S3_ENDPOINT: .* accepted the connection but sent no answer within 30 s \(S3_REQUEST_TIMEOUT_MS\) while writing a probe object/)]);
    expect(ms).toBeGreaterThanOrEqual(29_000);
    expect(ms).toBeLessThan(45_000);
  }, 60_000);

  it('a refused connection says so, and at which step', async () => {
    const port = await closedPort();
    const { code, problems } = await startup(s3Env(`http://127.0.0.1:${port}`), 20_000);
    expect(code).toBe(1);
    expect(problems).toEqual([
      `  S3_ENDPOINT: http://127.0.0.1:${port} refused the connection while writing a probe object to bucket "stowage" (check S3_ENDPOINT, or unset it to use AWS S3)`,
    ]);
  });

  it('an endpoint that answers but is not S3 is one line naming S3_ENDPOINT and the HTTP status, not UnknownError', async () => {
    const web = await track(startNotS3(404));
    const { code, problems } = await startup(s3Env(web.endpoint), 20_000);
    expect(code).toBe(1);
    expect(problems).toEqual([
      `  S3_ENDPOINT: ${web.endpoint} answered HTTP 404 with something other than S3 while writing a probe object to bucket "stowage" (check that S3_ENDPOINT is the S3 API endpoint)`,
    ]);
  });

  it('a server error that is not S3 XML stays one line', async () => {
    const web = await track(startNotS3(502));
    const { code, problems } = await startup(s3Env(web.endpoint), 30_000);
    expect(code).toBe(1);
    expect(problems).toEqual([expect.stringMatching(/^ {2}S3_ENDPOINT: http:\/\/127\.0\.0\.1:\d+ answered HTTP 502 with something other than S3 while writing a probe object/)]);
  });
});

describe('S3Store calls against a broken endpoint', () => {
  const options = (endpoint: string) => ({
    bucket: 'stowage',
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    partSize: 5 * 1024 * 1024,
    queueSize: 2,
    checksums: 'when_required' as const,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test-secret' },
    connectTimeoutMs: 300,
    requestTimeoutMs: 500,
  });

  it('every call against a black hole gives up as StoreUnavailable within one request timeout (a stalled attempt is not retried)', async () => {
    const hole = await track(startBlackHole());
    const store = new S3Store(options(hole.endpoint));
    try {
      for (const call of [() => store.head('a/b'), () => store.get('a/b'), () => store.delete('a/b'), () => store.put('a/b', chunked(Buffer.from('bytes'))), () => store.list()]) {
        const started = Date.now();
        const err = await call().then(() => undefined, (e: unknown) => e);
        expect(err).toBeInstanceOf(StoreUnavailable);
        expect(Date.now() - started).toBeLessThan(500 + 1000);
      }
      expect(hole.connections()).toBe(5);
    } finally {
      await store.close();
    }
  }, 60_000);

  it('a connection that never completes fails the probe within S3_CONNECT_TIMEOUT_MS, naming it', async () => {
    const unconnectable = await track(startUnconnectable());
    if (!unconnectable) {
      console.warn('python3 is not installed: the connect timeout is not tested');
      return;
    }
    const store = new S3Store(options(unconnectable.endpoint));
    const started = Date.now();
    const err = await store.probe().then(() => undefined, (e: unknown) => e);
    await store.close();
    expect(Date.now() - started).toBeLessThan(5000);
    expect(err).toBeInstanceOf(StoreUnavailable);
    expect((err as Error).message).toBe(
      `S3_ENDPOINT: could not connect to ${unconnectable.endpoint} within 0.3 s (S3_CONNECT_TIMEOUT_MS) while writing a probe object to bucket "stowage" (check S3_ENDPOINT, or unset it to use AWS S3)`,
    );
  });
});
