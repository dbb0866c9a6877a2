import type { Env } from '../../src/config';
import type { S3TestBucket } from './s3server';

/** The variables that point stowage at an s3rver bucket (s3rver needs S3_CHECKSUMS=when_required). */
export function s3Env(bucket: S3TestBucket, overrides: Env = {}): Record<string, string> {
  const env: Record<string, string | undefined> = {
    STORAGE: 's3',
    S3_BUCKET: bucket.bucket,
    S3_ENDPOINT: bucket.endpoint,
    S3_REGION: 'us-east-1',
    S3_FORCE_PATH_STYLE: 'true',
    S3_CHECKSUMS: 'when_required',
    S3_PART_SIZE: '5mb',
    S3_QUEUE_SIZE: '2',
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    ...overrides,
  };
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
}
