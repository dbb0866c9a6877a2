/** How to reach a bucket: built from S3_* (or Fly's Tigris) variables by the config. */
export interface S3StoreOptions {
  bucket: string;
  region: string;
  /** For S3-compatible services (R2, MinIO, Tigris...); unset means AWS S3. */
  endpoint?: string;
  /** `https://host/bucket/key` instead of `https://bucket.host/key`; most non-AWS services need it. */
  forcePathStyle?: boolean;
  /** Prepended as is to every key (so usually ends in `/`, e.g. `stowage/`): the bucket can be shared. */
  prefix?: string;
  /** Multipart part size in bytes (S3 minimum 5 MiB). */
  partSize: number;
  /** Parts uploaded in parallel per put; a put holds about (queueSize + 1) x partSize in memory. */
  queueSize: number;
  /**
   * Largest object `copy` copies in one CopyObject: S3's limit, 5 GiB, when unset. Larger ones
   * are copied in parts (UploadPartCopy), `queueSize` at a time.
   */
  copyLimit?: number;
  /**
   * `when_supported` sends CRC32 checksums with every upload (the SDK's default).
   * `when_required` only where S3 demands them: needed for servers that don't understand the
   * SDK's aws-chunked checksum framing and would store it as object data (s3rver).
   */
  checksums: 'when_supported' | 'when_required';
  /**
   * Longest wait for a TCP (and TLS) connection to the endpoint, per attempt (S3_CONNECT_TIMEOUT_MS).
   * Unset: DEFAULT_S3_CONNECT_TIMEOUT_MS.
   */
  connectTimeoutMs?: number;
  /**
   * Longest wait from sending a request (its body included: an upload part) until the answer's
   * headers arrive, per attempt (S3_REQUEST_TIMEOUT_MS). A response body then streams for as long
   * as it takes, so a long download to a slow client is never cut. Unset: DEFAULT_S3_REQUEST_TIMEOUT_MS.
   */
  requestTimeoutMs?: number;
  /** Normally unset: the SDK's default provider chain (AWS_ACCESS_KEY_ID..., roles) applies. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

export const DEFAULT_S3_CONNECT_TIMEOUT_MS = 5000;
export const DEFAULT_S3_REQUEST_TIMEOUT_MS = 30_000;
