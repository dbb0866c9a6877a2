import { spawn } from 'node:child_process';
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
 * - Multipart ETags have no `-N` suffix; signatures are not verified (any secret is accepted,
 *   an unknown access key id is refused).
 * - ListMultipartUploads answers NotImplemented: `inProgressUploads()` reads s3rver's upload
 *   directory instead.
 * - AbortMultipartUpload answers 405 and keeps the parts: the child process answers that one
 *   request itself, as S3 does, and hands every other request to s3rver.
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
  close(): Promise<void>;
}

const CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
/** s3rver's directory of in-progress multipart uploads inside a bucket (`<id>/key`, `<id>/<part>`). */
const UPLOADS_DIR = '._S3rver_uploads';

export async function startS3Server(bucket = 'stowage-test'): Promise<S3TestServer> {
  const directory = await makeTempDir('stowage-s3rver-');
  const child = spawn(
    process.execPath,
    ['--openssl-legacy-provider', path.join(__dirname, 's3rver-process.js'), directory, bucket],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`s3rver exited with code ${code} before listening`)));
    createInterface({ input: child.stdout! }).once('line', (line) => resolve((JSON.parse(line) as { port: number }).port));
  });
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
        return Promise.all(
          ids.map(async (id) => ({
            key: await fsp.readFile(path.join(uploadsDir, id, 'key'), 'utf8'),
            // Parts are stored as files named by part number, beside `key` and `metadata`.
            parts: (await fsp.readdir(path.join(uploadsDir, id))).filter((f) => /^\d+$/.test(f)).length,
          })),
        );
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
    async close() {
      for (const c of clients) c.destroy();
      // Closing its stdin tells the child to exit.
      child.stdin!.end();
      await exited;
      await fsp.rm(directory, { recursive: true, force: true });
    },
  };
}
