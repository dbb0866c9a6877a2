import path from 'node:path';
import { loadConfig } from '../../src/config';
import { configProblems } from '../helpers/config';

const cwd = '/srv/app';

const problems = (env: Record<string, string>) => configProblems(env, cwd);

describe('object storage configuration', () => {
  it('reads the S3_* variables, with the catalog staying at ./data/stowage.db', () => {
    const config = loadConfig(
      {
        STORAGE: 's3',
        S3_BUCKET: 'files',
        S3_REGION: 'eu-west-3',
        S3_ENDPOINT: 'http://127.0.0.1:9000',
        S3_FORCE_PATH_STYLE: 'true',
        S3_PREFIX: 'stowage/',
        S3_PART_SIZE: '16mb',
        S3_QUEUE_SIZE: '2',
        S3_CHECKSUMS: 'when_required',
        DOWNLOAD_MODE: 'redirect',
        PRESIGN_EXPIRES_S: '60',
      },
      cwd,
    );
    expect(config.storage.driver).toBe('s3');
    expect(config.storage.s3).toEqual({
      bucket: 'files',
      region: 'eu-west-3',
      endpoint: 'http://127.0.0.1:9000',
      forcePathStyle: true,
      prefix: 'stowage/',
      partSize: 16 * 1024 * 1024,
      queueSize: 2,
      checksums: 'when_required',
      connectTimeoutMs: 5000,
      requestTimeoutMs: 30_000,
      credentials: undefined,
    });
    expect(config.databasePath).toBe(path.join(cwd, 'data/stowage.db'));
    expect(config.downloads).toEqual({ mode: 'redirect', presignExpiresS: 60 });
    expect(config.directUploads).toEqual({ expiresS: 3600, sweepIntervalMs: 60_000, partSize: 64 * 1024 * 1024 });
  });

  it("accepts Fly Tigris's BUCKET_NAME, AWS_ENDPOINT_URL_S3 and AWS_REGION", () => {
    const config = loadConfig(
      { STORAGE: 's3', BUCKET_NAME: 'tigris-bucket', AWS_ENDPOINT_URL_S3: 'https://fly.storage.tigris.dev', AWS_REGION: 'auto' },
      cwd,
    );
    expect(config.storage.s3).toMatchObject({ bucket: 'tigris-bucket', endpoint: 'https://fly.storage.tigris.dev', region: 'auto' });
    // The S3_* names win when both are set.
    expect(loadConfig({ STORAGE: 's3', BUCKET_NAME: 'a', S3_BUCKET: 'b' }, cwd).storage.s3?.bucket).toBe('b');
  });

  it('gives every S3 call connect and request timeouts, 5 s and 30 s unless set', () => {
    const config = loadConfig({ STORAGE: 's3', S3_BUCKET: 'b', S3_CONNECT_TIMEOUT_MS: '250', S3_REQUEST_TIMEOUT_MS: '120000' }, cwd);
    expect(config.storage.s3).toMatchObject({ connectTimeoutMs: 250, requestTimeoutMs: 120_000 });
    expect(problems({ STORAGE: 's3', S3_BUCKET: 'b', S3_CONNECT_TIMEOUT_MS: '5s', S3_REQUEST_TIMEOUT_MS: '0' })).toEqual([
      'S3_CONNECT_TIMEOUT_MS: "5s" must be a whole number of milliseconds',
      'S3_REQUEST_TIMEOUT_MS: "0" must be at least 1 milliseconds',
    ]);
  });

  it('passes keys through only as a pair; otherwise the SDK credential chain applies', () => {
    const withKeys = loadConfig({ STORAGE: 's3', S3_BUCKET: 'b', AWS_ACCESS_KEY_ID: 'id', AWS_SECRET_ACCESS_KEY: 'secret' }, cwd);
    expect(withKeys.storage.s3?.credentials).toEqual({ accessKeyId: 'id', secretAccessKey: 'secret', sessionToken: undefined });
    expect(problems({ STORAGE: 's3', S3_BUCKET: 'b', AWS_ACCESS_KEY_ID: 'id' })).toEqual([
      "AWS_SECRET_ACCESS_KEY: required with AWS_ACCESS_KEY_ID (set both, or neither to use the SDK's credential chain)",
    ]);
  });

  it('configures the bucket as a secondary store when STORAGE is another driver', () => {
    const config = loadConfig({ STORAGE: 'volume', S3_BUCKET: 'target' }, cwd);
    expect(config.storage.driver).toBe('volume');
    expect(config.storage.s3?.bucket).toBe('target');
    expect(loadConfig({}, cwd).storage.s3).toBeUndefined();
  });

  it('names each bad variable', () => {
    expect(problems({ STORAGE: 's3' })).toEqual([
      'S3_BUCKET: required when STORAGE=s3 (the bucket to store files in; BUCKET_NAME is read too)',
    ]);
    expect(
      problems({
        STORAGE: 's3',
        S3_BUCKET: 'b',
        S3_PART_SIZE: '1mb',
        S3_FORCE_PATH_STYLE: 'maybe',
        S3_ENDPOINT: 'minio:9000',
        S3_PREFIX: '/abs',
        DOWNLOAD_MODE: 'stream',
        DIRECT_UPLOAD_PART_SIZE: '6gb',
      }),
    ).toEqual([
      'S3_ENDPOINT: "minio:9000" must be an http(s) URL such as https://<account>.r2.cloudflarestorage.com',
      'S3_FORCE_PATH_STYLE: "maybe" must be true or false',
      'S3_PREFIX: "/abs" must be empty or path segments ending in "/", e.g. stowage/',
      'S3_PART_SIZE: "1mb" must be at least 5mb (the S3 minimum part size)',
      expect.stringMatching(/^DOWNLOAD_MODE: "stream" /),
      'DIRECT_UPLOAD_PART_SIZE: "6gb" must be between 5mb and 5gb (the S3 part sizes)',
    ]);
  });
});
