import { z } from 'zod';
import { ConfigError } from '../errors';
import { DEFAULT_S3_CONNECT_TIMEOUT_MS, DEFAULT_S3_REQUEST_TIMEOUT_MS, type S3StoreOptions } from '../storage/s3-options';

export interface DownloadSettings {
  /** `redirect` sends clients to a presigned URL when the file's store can make one. */
  mode: 'proxy' | 'redirect';
  presignExpiresS: number;
}

export interface DirectUploadSettings {
  /** Lifetime of the presigned PUT URL; a pending direct upload is swept after twice this. */
  expiresS: number;
  /** How often the server looks for expired direct uploads. */
  sweepIntervalMs: number;
  /** A declared size over this goes up in parts of this size (more when 10,000 would not hold it). */
  partSize: number;
}

const MIN_PART_SIZE = 5 * 1024 ** 2;
/** S3's largest part, and its largest single PUT. */
const MAX_PART_SIZE = 5 * 1024 ** 3;

const flag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

/**
 * The object-storage variables, spread into the one config schema. The shared value parsers are
 * passed in so both files agree on what a size or a count is.
 */
export function objectStorageFields(parsers: {
  byteSize: z.ZodType<number, string>;
  positiveInt: (what: string) => z.ZodType<number, string>;
}) {
  return {
    S3_BUCKET: z.string().min(1).optional(),
    /** Fly's Tigris (`fly storage create`) sets these two. */
    BUCKET_NAME: z.string().min(1).optional(),
    AWS_ENDPOINT_URL_S3: z.url({ protocol: /^https?$/, message: 'must be an http(s) URL such as https://fly.storage.tigris.dev' }).optional(),
    S3_REGION: z.string().min(1).optional(),
    AWS_REGION: z.string().min(1).optional(),
    S3_ENDPOINT: z.url({ protocol: /^https?$/, message: 'must be an http(s) URL such as https://<account>.r2.cloudflarestorage.com' }).optional(),
    S3_FORCE_PATH_STYLE: flag.default(false),
    S3_PREFIX: z
      .string()
      .regex(/^([A-Za-z0-9_-][A-Za-z0-9._-]*\/)*$/, 'must be empty or path segments ending in "/", e.g. stowage/')
      .default(''),
    // 5 MiB parts, 3 at a time: measured (npm run bench) a 1 GiB upload peaks at 186-187 MB RSS,
    // where 8 MiB x 4 reached 197-217 MB; the ratio to a direct upload with the same sizes held.
    S3_PART_SIZE: parsers.byteSize
      .refine((n) => n >= MIN_PART_SIZE, 'must be at least 5mb (the S3 minimum part size)')
      .default(MIN_PART_SIZE),
    S3_QUEUE_SIZE: parsers.positiveInt('parts').default(3),
    S3_CHECKSUMS: z.enum(['when_supported', 'when_required']).default('when_supported'),
    S3_CONNECT_TIMEOUT_MS: parsers.positiveInt('milliseconds').default(DEFAULT_S3_CONNECT_TIMEOUT_MS),
    S3_REQUEST_TIMEOUT_MS: parsers.positiveInt('milliseconds').default(DEFAULT_S3_REQUEST_TIMEOUT_MS),
    AWS_ACCESS_KEY_ID: z.string().min(1).optional(),
    AWS_SECRET_ACCESS_KEY: z.string().min(1).optional(),
    AWS_SESSION_TOKEN: z.string().min(1).optional(),
    DOWNLOAD_MODE: z.enum(['proxy', 'redirect']).default('proxy'),
    PRESIGN_EXPIRES_S: parsers.positiveInt('seconds').refine((n) => n <= 604800, 'must be at most 604800 (7 days, the S3 limit)').default(300),
    DIRECT_UPLOAD_EXPIRES_S: parsers
      .positiveInt('seconds')
      .refine((n) => n <= 604800, 'must be at most 604800 (7 days, the S3 limit)')
      .default(3600),
    DIRECT_UPLOAD_PART_SIZE: parsers.byteSize
      .refine((n) => n >= MIN_PART_SIZE && n <= MAX_PART_SIZE, 'must be between 5mb and 5gb (the S3 part sizes)')
      .default(64 * 1024 ** 2),
  };
}

type Fields = ReturnType<typeof objectStorageFields>;
type Parsed = { STORAGE: string } & z.output<z.ZodObject<Fields>>;

export function readObjectStorage(e: Parsed): {
  s3?: S3StoreOptions;
  downloads: DownloadSettings;
  directUploads: DirectUploadSettings;
} {
  const bucket = e.S3_BUCKET ?? e.BUCKET_NAME;
  if (e.STORAGE === 's3' && !bucket) {
    throw new ConfigError(['S3_BUCKET: required when STORAGE=s3 (the bucket to store files in; BUCKET_NAME is read too)']);
  }
  // Both or neither: one alone would silently fall back to another identity from the chain.
  if ((e.AWS_ACCESS_KEY_ID === undefined) !== (e.AWS_SECRET_ACCESS_KEY === undefined)) {
    const missing = e.AWS_ACCESS_KEY_ID === undefined ? 'AWS_ACCESS_KEY_ID' : 'AWS_SECRET_ACCESS_KEY';
    throw new ConfigError([`${missing}: required with ${missing === 'AWS_ACCESS_KEY_ID' ? 'AWS_SECRET_ACCESS_KEY' : 'AWS_ACCESS_KEY_ID'} (set both, or neither to use the SDK's credential chain)`]);
  }
  const credentials =
    e.AWS_ACCESS_KEY_ID && e.AWS_SECRET_ACCESS_KEY
      ? { accessKeyId: e.AWS_ACCESS_KEY_ID, secretAccessKey: e.AWS_SECRET_ACCESS_KEY, sessionToken: e.AWS_SESSION_TOKEN }
      : undefined;
  return {
    s3: bucket
      ? {
          bucket,
          region: e.S3_REGION ?? e.AWS_REGION ?? 'us-east-1',
          endpoint: e.S3_ENDPOINT ?? e.AWS_ENDPOINT_URL_S3,
          forcePathStyle: e.S3_FORCE_PATH_STYLE,
          prefix: e.S3_PREFIX,
          partSize: e.S3_PART_SIZE,
          queueSize: e.S3_QUEUE_SIZE,
          checksums: e.S3_CHECKSUMS,
          connectTimeoutMs: e.S3_CONNECT_TIMEOUT_MS,
          requestTimeoutMs: e.S3_REQUEST_TIMEOUT_MS,
          credentials,
        }
      : undefined,
    downloads: { mode: e.DOWNLOAD_MODE, presignExpiresS: e.PRESIGN_EXPIRES_S },
    directUploads: { expiresS: e.DIRECT_UPLOAD_EXPIRES_S, sweepIntervalMs: Math.min(60_000, e.DIRECT_UPLOAD_EXPIRES_S * 1000),
      partSize: e.DIRECT_UPLOAD_PART_SIZE,
    },
  };
}
