import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { DeleteObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { type Child, ROOT, peakRssMb, procStatusMb, repeatedBody, startChild, uploadToStowage } from './harness';

const BUCKET = 'bench';
const CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
/** stowage's defaults (S3_PART_SIZE, S3_QUEUE_SIZE), used for both sides so they compare. */
const PART_SIZE = 5 * 1024 * 1024;
const QUEUE_SIZE = 3;
const CHUNK = 1024 * 1024;
/** One random MiB, repeated: incompressible, and costs the client nothing to make. */
const BLOCK = randomBytes(CHUNK);

export interface S3BenchResult {
  bytes: number;
  stowageMBps: number;
  directMBps: number;
  /** stowage throughput as a fraction of the direct upload's. */
  ratio: number;
  /** stowage's peak resident set (VmHWM) over its whole life, which includes the upload. */
  stowagePeakRssMB: number;
  stowageRssBeforeMB: number;
}

/** Resolves with the first stdout line of `child`. */
function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`child exited (${code}) before it was ready`)));
    createInterface({ input: child.stdout! }).once('line', resolve);
  });
}

async function emptyBucket(client: S3Client): Promise<void> {
  const listed = await client.send(new ListObjectsV2Command({ Bucket: BUCKET }));
  for (const object of listed.Contents ?? []) await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: object.Key }));
}

/**
 * A 1 GiB upload through stowage on STORAGE=s3 (stowage and s3rver each a child process) against
 * the same s3rver's direct lib-storage Upload with the same part and queue sizes, and stowage's
 * peak RSS. The s3rver directory is removed afterwards.
 */
export async function runS3Bench(size = 1024 ** 3): Promise<S3BenchResult> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'stowage-bench-s3-'));
  let s3rver: ChildProcess | undefined;
  let stowage: Child | undefined;
  const client = { current: undefined as S3Client | undefined };
  try {
    await fsp.mkdir(path.join(dir, 's3'));
    // The test harness's s3rver runner (legacy OpenSSL provider, S3-style multipart abort).
    s3rver = spawn(process.execPath, ['--openssl-legacy-provider', path.join(ROOT, 'test/helpers/s3rver-process.js'), path.join(dir, 's3'), BUCKET], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const endpoint = `http://127.0.0.1:${(JSON.parse(await firstLine(s3rver)) as { port: number }).port}`;

    // cwd: the embedded catalog goes to ./data, inside the run's directory.
    stowage = await startChild(
      path.join(ROOT, 'dist/src/cli/index.js'),
      {
        PORT: '0',
        HOST: '127.0.0.1',
        STORAGE: 's3',
        S3_BUCKET: BUCKET,
        S3_ENDPOINT: endpoint,
        S3_FORCE_PATH_STYLE: 'true',
        S3_CHECKSUMS: 'when_required',
        AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
        MAX_UPLOAD_BYTES: String(size * 2),
        LOG_LEVEL: 'info',
      },
      { cwd: dir },
    );
    const stowageRssBeforeMB = procStatusMb(stowage.process.pid!, 'VmRSS');

    let started = process.hrtime.bigint();
    await uploadToStowage(stowage.port, 'bench.bin', size, BLOCK);
    const stowageSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    const stowagePeakRssMB = peakRssMb(stowage.process.pid!);

    client.current = new S3Client({
      region: 'us-east-1',
      endpoint,
      forcePathStyle: true,
      credentials: CREDENTIALS,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    // Free s3rver's disk before the second gigabyte.
    await emptyBucket(client.current);
    started = process.hrtime.bigint();
    await new Upload({
      client: client.current,
      params: { Bucket: BUCKET, Key: 'direct/bench.bin', Body: repeatedBody(BLOCK, size / CHUNK) },
      partSize: PART_SIZE,
      queueSize: QUEUE_SIZE,
    }).done();
    const directSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    await emptyBucket(client.current);

    const stowageMBps = size / 1e6 / stowageSeconds;
    const directMBps = size / 1e6 / directSeconds;
    return { bytes: size, stowageMBps, directMBps, ratio: stowageMBps / directMBps, stowagePeakRssMB, stowageRssBeforeMB };
  } finally {
    client.current?.destroy();
    await stowage?.stop();
    if (s3rver && s3rver.exitCode === null) {
      const exited = new Promise((resolve) => s3rver!.once('exit', resolve));
      // s3rver's runner exits when its stdin closes.
      s3rver.stdin!.end();
      await exited;
    }
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

export function formatS3Bench(r: S3BenchResult): string {
  const gib = (r.bytes / 1024 ** 3).toFixed(2);
  return [
    `s3: ${gib} GiB upload through stowage (STORAGE=s3, s3rver): ${r.stowageMBps.toFixed(1)} MB/s`,
    `s3: same server, direct lib-storage Upload:              ${r.directMBps.toFixed(1)} MB/s`,
    `s3: stowage / direct: ${r.ratio.toFixed(2)}`,
    `s3: stowage peak RSS: ${r.stowagePeakRssMB.toFixed(0)} MB (target < 200 MB; ${r.stowageRssBeforeMB.toFixed(0)} MB before the upload)`,
  ].join('\n');
}

if (require.main === module) {
  runS3Bench().then(
    (result) => console.log(formatS3Bench(result)),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
