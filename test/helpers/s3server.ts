import { type ChildProcess, spawn } from 'node:child_process';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { CreateBucketCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import type { S3StoreOptions } from '../../src/storage/s3';
import { makeTempDir } from './tmp';

/**
 * A real S3-protocol server (s3rver) on 127.0.0.1 with one empty bucket, storing under a temp
 * directory. It runs in a child process (see s3rver-process.js for why).
 *
 * What s3rver lacks against real S3, and how the tests live with it:
 * - The SDK's default aws-chunked bodies with trailing CRC32 checksums are stored verbatim as
 *   object data: clients must use `checksums: 'when_required'`.
 * - Suffix ranges (`bytes=-5`) return the wrong bytes: the store only sends absolute ranges.
 * - `bytes=0-0` returns the whole object (an end of 0 is taken as "no end"): the store cuts a
 *   response down to the range it asked for, as it must for any server that ignores Range.
 * - Truncated ListObjectsV2 pages fail with InternalError unless Node has the legacy OpenSSL
 *   provider (DES continuation tokens): the child process is started with it.
 * - Deleting an object removed its key's empty directories, racing a concurrent PUT under the
 *   same prefix (which then crashed s3rver): the child process leaves the directories.
 * - Multipart ETags have no `-N` suffix; signatures are not verified (any secret is accepted,
 *   an unknown access key id is refused).
 * - ListMultipartUploads answers NotImplemented, ListParts and AbortMultipartUpload 405 (the last
 *   keeping the parts): the child process answers those three itself, as S3 does, from s3rver's
 *   upload directory, and hands every other request to s3rver. `inProgressUploads()` reads that
 *   directory directly, so a test's view doesn't depend on the shim.
 */
/** One bucket on the server. */
export interface S3TestBucket {
  endpoint: string;
  bucket: string;
  /** Options for an S3Store talking to this bucket. */
  storeOptions(overrides?: Partial<S3StoreOptions>): S3StoreOptions;
  /** Every object key in the bucket, whatever its prefix. */
  objectKeys(): Promise<string[]>;
  /** Each multipart upload started and neither completed nor aborted, with its parts received. */
  inProgressUploads(): Promise<{ key: string; parts: number }[]>;
}

/** The server, with its first bucket; start one per test file, a new bucket per test. */
export interface S3TestServer extends S3TestBucket {
  /** A client for inspecting buckets directly, bypassing the store under test. */
  client(): S3Client;
  /** Creates another empty bucket on the same server. */
  newBucket(): Promise<S3TestBucket>;
  /** SIGKILLs the server, as an outage does: connections are cut, new ones refused. */
  kill(): Promise<void>;
  /** Starts it again after `kill`, on the same port and directory: what it stored is back. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

const CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
/** s3rver's directory of in-progress multipart uploads inside a bucket (`<id>/key`, `<id>/<part>`). */
const UPLOADS_DIR = '._S3rver_uploads';

/** The s3rver child process on `directory`, listening on `port` (0: any free one). */
async function spawnS3rver(directory: string, bucket: string, port = 0): Promise<{ child: ChildProcess; port: number; exited: Promise<void> }> {
  const child = spawn(
    process.execPath,
    ['--openssl-legacy-provider', path.join(__dirname, 's3rver-process.js'), directory, bucket, String(port)],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // A killed child's stdin fails any later write: nothing to report.
  child.stdin!.on('error', () => undefined);
  const listening = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`s3rver exited with code ${code} before listening`)));
    createInterface({ input: child.stdout! }).once('line', (line) => resolve((JSON.parse(line) as { port: number }).port));
  });
  return { child, port: listening, exited };
}

export async function startS3Server(bucket = 'stowage-test'): Promise<S3TestServer> {
  const directory = await makeTempDir('stowage-s3rver-');
  let running = await spawnS3rver(directory, bucket);
  const { port } = running;
  const endpoint = `http://127.0.0.1:${port}`;

  const clients: S3Client[] = [];
  const client = () => {
    const c = new S3Client({
      region: 'us-east-1',
      endpoint,
      forcePathStyle: true,
      credentials: CREDENTIALS,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    clients.push(c);
    return c;
  };
  const inspector = client();

  const bucketView = (name: string): S3TestBucket => {
    const uploadsDir = path.join(directory, name, UPLOADS_DIR);
    return {
      endpoint,
      bucket: name,
      storeOptions: (overrides = {}) => ({
        bucket: name,
        region: 'us-east-1',
        endpoint,
        forcePathStyle: true,
        partSize: 5 * 1024 * 1024,
        queueSize: 2,
        checksums: 'when_required',
        credentials: CREDENTIALS,
        ...overrides,
      }),
      async objectKeys() {
        const keys: string[] = [];
        let token: string | undefined;
        do {
          const res = await inspector.send(new ListObjectsV2Command({ Bucket: name, ContinuationToken: token }));
          keys.push(...(res.Contents ?? []).map((o) => o.Key ?? ''));
          token = res.IsTruncated ? res.NextContinuationToken : undefined;
        } while (token);
        return keys;
      },
      async inProgressUploads() {
        const ids = await fsp.readdir(uploadsDir).catch(() => []);
        const uploads = await Promise.all(
          ids.map(async (id) => {
            try {
              return {
                key: await fsp.readFile(path.join(uploadsDir, id, 'key'), 'utf8'),
                // Parts are stored as files named by part number, beside `key` and `metadata`; a part is
                // complete once its `.md5` is written beside it (one cut off mid-body is not a part).
                parts: (await fsp.readdir(path.join(uploadsDir, id))).filter((f) => /^\d+\.md5$/.test(f)).length,
              };
            } catch (err) {
              // Being created (its `key` not written yet) or just completed or aborted: not in progress yet, or any more.
              if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
              throw err;
            }
          }),
        );
        return uploads.filter((u) => u !== undefined);
      },
    };
  };

  let buckets = 0;
  return {
    ...bucketView(bucket),
    client,
    async newBucket() {
      const name = `${bucket}-${++buckets}`;
      await inspector.send(new CreateBucketCommand({ Bucket: name }));
      return bucketView(name);
    },
    async kill() {
      running.child.kill('SIGKILL');
      await running.exited;
    },
    async restart() {
      running = await spawnS3rver(directory, bucket, port);
    },
    async close() {
      for (const c of clients) c.destroy();
      // Closing its stdin tells the child to exit (unless a test killed it and left it so).
      if (running.child.exitCode === null && running.child.signalCode === null) running.child.stdin!.end();
      await running.exited;
      await fsp.rm(directory, { recursive: true, force: true });
    },
  };
}
