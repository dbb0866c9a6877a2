import { randomUUID } from 'node:crypto';
import { Readable, Transform, finished } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { BlobNotFound, StorePermissionMissing, StoreUnavailable } from '../errors';
import { isStall, s3ClientConfig } from './s3-http';
import { DEFAULT_S3_CONNECT_TIMEOUT_MS, DEFAULT_S3_REQUEST_TIMEOUT_MS, type S3StoreOptions } from './s3-options';
import {
  assertValidKey,
  assertValidSourceKey,
  type BlobInfo,
  type ByteRange,
  type IncompleteUpload,
  type IncompleteUploadPage,
  type ListOptions,
  type ListPage,
  PartsRejected,
  type PutOptions,
  type Store,
  type UploadedPart,
} from './store';

export type { S3StoreOptions } from './s3-options';

export interface PresignGetOptions {
  expiresIn: number;
  responseContentDisposition?: string;
  responseContentType?: string;
}

export interface PresignPutOptions {
  expiresIn: number;
  contentType: string;
  /** Signed into the URL, so the uploader can't send a different size. */
  contentLength?: number;
}

/** S3's answers to a CompleteMultipartUpload whose part list doesn't match the parts uploaded. */
const PART_ERRORS = new Set(['InvalidPart', 'InvalidPartOrder', 'EntityTooSmall']);

/** S3's limit for one CopyObject (and for one part of a multipart copy). */
const MAX_COPY_OBJECT = 5 * 1024 ** 3;
/** Parts of a multipart copy: fewer calls than the upload part size, each done well within a request's time. */
const COPY_PART_SIZE = 512 * 1024 ** 2;
const MAX_PARTS = 10_000;

/**
 * Probe objects live under this directory of the prefix. Store keys never start with a dot, so
 * it can't collide with one, and `list` hides it.
 */
const PROBE_DIR = '.stowage-probe/';
/** The calls lib-storage makes to write an object (an abort is not one: the put has failed already). */
const PUT_COMMANDS = new Set(['PutObjectCommand', 'CreateMultipartUploadCommand', 'UploadPartCommand', 'CompleteMultipartUploadCommand']);
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH']);
const CREDENTIAL_ERRORS = new Set(['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'CredentialsProviderError']);

interface SdkErrorShape {
  name?: unknown;
  code?: unknown;
  errors?: unknown;
  $metadata?: { httpStatusCode?: number };
}

function httpStatus(err: unknown): number | undefined {
  return (err as SdkErrorShape | null)?.$metadata?.httpStatusCode;
}

function errorName(err: unknown): string | undefined {
  const name = (err as SdkErrorShape | null)?.name;
  return typeof name === 'string' ? name : undefined;
}

/** The socket-level code of a failed connection; Node 20 may wrap several in an AggregateError. */
function networkCode(err: unknown): string | undefined {
  const e = err as SdkErrorShape | null;
  if (typeof e?.code === 'string' && NETWORK_CODES.has(e.code)) return e.code;
  if (Array.isArray(e?.errors)) {
    for (const inner of e.errors) {
      const code = networkCode(inner);
      if (code) return code;
    }
  }
  if (errorName(err) === 'TimeoutError') return 'ETIMEDOUT';
  // The SDK replaces a thrown value that fails `instanceof Error` (one from another realm, as
  // under jest) with "AWS SDK error wrapper for <message>", keeping only the message.
  const message = err instanceof Error ? err.message : '';
  return message.startsWith('AWS SDK error wrapper') ? [...NETWORK_CODES].find((c) => message.includes(c)) : undefined;
}

/**
 * HTTP lets a server ignore Range (200 with the whole body), and some S3-compatible servers send
 * more than asked (s3rver turns `bytes=0-0` into the whole object). Cut such a body down to the
 * requested bytes rather than hand out the wrong ones.
 */
function exactRange(body: Readable, range: ByteRange, contentRange?: string, contentLength?: number): Readable {
  const first = contentRange === undefined ? 0 : Number(/^bytes (\d+)-/.exec(contentRange)?.[1]);
  const length = range.end - range.start + 1;
  if (first === range.start && contentLength !== undefined && contentLength <= length) return body;
  if (!(first <= range.start)) {
    body.destroy();
    throw new Error(`Asked for bytes from ${range.start}, the server sent ${contentRange}`);
  }
  const skip = range.start - first;
  return Readable.from(
    (async function* () {
      let position = 0;
      // Leaving the loop early destroys the body, which stops the download.
      for await (const chunk of body as AsyncIterable<Buffer>) {
        const from = Math.max(0, skip - position);
        const to = Math.min(chunk.length, skip + length - position);
        position += chunk.length;
        if (to > from) yield chunk.subarray(from, to);
        if (position >= skip + length) break;
      }
    })(),
    { objectMode: false },
  );
}

/** Which of the request handler's timeouts ended a call, if one did. */
function timeoutOf(err: unknown): 'connect' | 'request' | undefined {
  if (!isStall(err)) return undefined;
  // NodeHttpHandler's connect timeout: "the request socket did not establish a connection...".
  return err instanceof Error && /establish a connection/.test(err.message) ? 'connect' : 'request';
}

/**
 * The HTTP status of an answer that was not an S3 response (an HTML error page from a web server
 * or a proxy): the SDK calls it UnknownError, or fails to parse it as XML.
 */
function notS3Status(err: unknown): number | undefined {
  const e = err as (SdkErrorShape & { $response?: { statusCode?: number } }) | null;
  const status = httpStatus(err) ?? e?.$response?.statusCode;
  const message = err instanceof Error ? err.message : '';
  if (status === undefined) return undefined;
  // An error body that isn't S3's XML leaves the SDK with a message of "UnknownError" (named
  // after the status: NotFound, Unknown...), or a failed parse.
  return message === 'UnknownError' || errorName(err) === 'Unknown' || /Deserialization error|parse error/i.test(message) ? status : undefined;
}

const seconds = (ms: number) => `${ms / 1000} s`;

/** The first line of an error's message: a start-up problem is one line. */
function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0].trim();
}

function isNotFound(err: unknown): boolean {
  const name = errorName(err);
  return name === 'NoSuchKey' || name === 'NotFound' || (httpStatus(err) === 404 && name !== 'NoSuchBucket');
}

/**
 * Blobs as objects in an S3-compatible bucket. Puts stream through lib-storage's multipart
 * upload with bounded memory; S3 only makes an object visible once its upload completes, which
 * gives the atomicity the Store contract asks for.
 */
export class S3Store implements Store {
  readonly driver = 's3';
  private readonly client: S3Client;
  /**
   * The same endpoint without retries: a probe reports the first failure, within one round of
   * timeouts, and a failed put's abort doesn't keep its caller waiting (see abortMultipart).
   */
  private readonly probeClient: S3Client;
  /**
   * Signs URLs only. Under WHEN_SUPPORTED the SDK signs a CRC32 of the (empty) body into a PUT
   * URL (`x-amz-checksum-crc32=AAAAAA==`), which S3 then holds the uploaded bytes to: every PUT
   * to the URL would fail. Nothing is checksummed unless the operation requires it.
   */
  private readonly presignClient: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly endpointName: string;
  private readonly connectTimeoutMs: number;
  private readonly requestTimeoutMs: number;
  /** Ids of multipart uploads of failed puts that could not be aborted (see abortMultipart). */
  private readonly abandoned = new Set<string>();
  /** Puts in progress, by object key: told when one of their calls has failed for good. */
  private readonly failing = new Map<string, (err: unknown) => void>();

  constructor(private readonly options: S3StoreOptions) {
    this.bucket = options.bucket;
    this.prefix = options.prefix ?? '';
    this.endpointName = options.endpoint ?? `AWS S3 (${options.region})`;
    this.connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_S3_CONNECT_TIMEOUT_MS;
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_S3_REQUEST_TIMEOUT_MS;
    this.client = new S3Client(s3ClientConfig(options, 3));
    this.probeClient = new S3Client(s3ClientConfig(options, 1));
    const { region, endpoint, forcePathStyle, credentials } = options;
    this.presignClient = new S3Client({ region, endpoint, forcePathStyle, credentials, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
    // lib-storage only rejects once every part reader stops, and a reader filling a part waits for
    // the body: a slow client would keep sending for minutes into an upload that already failed.
    // Seeing a put's call fail (after its retries) lets `put` stop the body at once.
    this.client.middlewareStack.add(
      (next, context) => async (args) => {
        try {
          return await next(args);
        } catch (err) {
          const key = (args.input as { Key?: unknown }).Key;
          if (typeof key === 'string' && PUT_COMMANDS.has(context.commandName ?? '')) this.failing.get(key)?.(err);
          throw err;
        }
      },
      { step: 'initialize', name: 'stowagePutFailure' },
    );
  }

  get location(): string {
    return `s3://${this.bucket}/${this.prefix}${this.options.endpoint ? ` at ${this.options.endpoint}` : ''}`;
  }

  private objectKey(key: string): string {
    assertValidKey(key);
    return this.prefix + key;
  }

  async put(key: string, body: Readable, options: PutOptions = {}): Promise<{ size: number }> {
    const { signal } = options;
    try {
      assertValidKey(key);
      signal?.throwIfAborted();
    } catch (err) {
      body.destroy();
      throw err;
    }
    const objectKey = this.prefix + key;
    let size = 0;
    let bodyError: unknown;
    let storeError: unknown;
    // Counts bytes on their way to the uploader; a body error or an abort destroys it, which
    // ends lib-storage's part reader with that error.
    const counted = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        size += chunk.length;
        callback(null, chunk);
      },
    });
    // Piped, not pipelined: when a part fails, lib-storage stops reading and its reader destroys
    // `counted` with an AbortError, which must not pass for a failure of the body (it would hide
    // the store's error, and answer 500 instead of 503).
    body.pipe(counted);
    const stopWatching = finished(body, (err) => {
      if (!err) return;
      bodyError ??= err;
      counted.destroy(err);
    });
    const onAbort = () => counted.destroy(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const onFailure = (err: unknown) => {
      storeError ??= err;
      counted.destroy(err instanceof Error ? err : new Error(String(err)));
    };
    this.failing.set(objectKey, onFailure);
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: objectKey, Body: counted, ContentType: options.contentType },
      partSize: this.options.partSize,
      queueSize: this.options.queueSize,
      // Aborted here instead (abortMultipart), so that an abort that fails is known and retried.
      leavePartsOnError: true,
    });
    try {
      // Not upload.abort(): that makes done() reject at once while parts are still in flight (and
      // leaves the part reader waiting on a body that may never end). Failing the body instead
      // lets in-flight parts finish before done() rejects, so that the abort below leaves no part.
      //
      // Once done() resolves the object is committed: an abort arriving later changes nothing.
      await upload.done();
      return { size };
    } catch (err) {
      stopWatching();
      body.unpipe(counted);
      body.destroy();
      counted.destroy();
      if (upload.uploadId) await this.abortMultipart(key, upload.uploadId);
      if (signal?.aborted) throw signal.reason;
      // The call that failed first, not what its teardown made of the other part readers.
      throw bodyError ?? this.wrap(storeError ?? err, `write ${key}`);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      if (this.failing.get(objectKey) === onFailure) this.failing.delete(objectKey);
    }
  }

  /**
   * Aborts a failed put's multipart upload, in one attempt: the put's caller (a client waiting for
   * its answer) is not kept waiting on retries. When that fails (the store is down), the upload is
   * remembered as abandoned: `listIncompleteUploads` then lists it whatever its age, and the sweep
   * aborts it once the store is back.
   */
  private async abortMultipart(key: string, uploadId: string): Promise<void> {
    try {
      await this.sendAbort(this.probeClient, key, uploadId);
    } catch {
      this.abandoned.add(uploadId);
    }
  }

  async listIncompleteUploads({ startedBefore, cursor, limit = 1000 }: { startedBefore: Date; cursor?: string; limit?: number }): Promise<IncompleteUploadPage> {
    const items: IncompleteUpload[] = [];
    // The cursor is the last upload looked at, so pages resume from it (S3's own markers).
    let after = cursor === undefined ? undefined : (JSON.parse(cursor) as { key: string; uploadId: string });
    try {
      for (;;) {
        const res = await this.client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.bucket,
            Prefix: this.prefix,
            KeyMarker: after?.key,
            UploadIdMarker: after?.uploadId,
            MaxUploads: Math.min(1000, limit - items.length),
          }),
        );
        for (const { Key, UploadId, Initiated } of res.Uploads ?? []) {
          if (Key === undefined || UploadId === undefined) continue;
          after = { key: Key, uploadId: UploadId };
          const startedAt = Initiated ?? new Date(0);
          const abandoned = this.abandoned.has(UploadId);
          if (!abandoned && startedAt >= startedBefore) continue;
          items.push({ key: Key.slice(this.prefix.length), uploadId: UploadId, startedAt, abandoned, bytes: await this.partBytes(Key, UploadId) });
        }
        if (!res.IsTruncated || after === undefined) return { items };
        if (items.length >= limit) return { items, cursor: JSON.stringify(after) };
      }
    } catch (err) {
      throw this.wrap(err, 'list incomplete multipart uploads', 's3:ListBucketMultipartUploads and s3:ListMultipartUploadParts');
    }
  }

  /** What an upload's parts hold (ListParts, a page of up to 1,000 parts at a time). */
  private async partBytes(objectKey: string, uploadId: string): Promise<number> {
    let bytes = 0;
    let marker: string | undefined;
    do {
      const res = await this.client.send(new ListPartsCommand({ Bucket: this.bucket, Key: objectKey, UploadId: uploadId, PartNumberMarker: marker }));
      for (const part of res.Parts ?? []) bytes += part.Size ?? 0;
      marker = res.IsTruncated ? res.NextPartNumberMarker : undefined;
    } while (marker);
    return bytes;
  }

  async abortIncompleteUpload({ key, uploadId }: Pick<IncompleteUpload, 'key' | 'uploadId'>): Promise<void> {
    await this.sendAbort(this.client, key, uploadId);
  }

  private async sendAbort(client: S3Client, key: string, uploadId: string): Promise<void> {
    try {
      // A key listed from the bucket, which may be a resumable upload's (`.tus/...`): not checked as a store key.
      await client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.prefix + key, UploadId: uploadId }));
    } catch (err) {
      // Already completed or aborted: nothing left to discard.
      if (errorName(err) !== 'NoSuchUpload' && httpStatus(err) !== 404) throw this.wrap(err, `abort the multipart upload of ${key}`, 's3:AbortMultipartUpload');
    }
    this.abandoned.delete(uploadId);
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    try {
      const res = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: this.objectKey(key),
          // Absolute ranges only: suffix ranges are resolved by callers, who know the size.
          Range: range && `bytes=${range.start}-${range.end}`,
        }),
      );
      if (!(res.Body instanceof Readable)) throw new Error('GetObject returned no stream body');
      const body = range ? exactRange(res.Body, range, res.ContentRange, res.ContentLength) : res.Body;
      return this.wrapStream(body, `read ${key}`);
    } catch (err) {
      if (isNotFound(err)) throw new BlobNotFound(key, { cause: err });
      throw this.wrap(err, `read ${key}`);
    }
  }

  async head(key: string): Promise<BlobInfo | undefined> {
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
      return { key, size: res.ContentLength ?? 0, modifiedAt: res.LastModified ?? new Date(0) };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw this.wrap(err, `stat ${key}`);
    }
  }

  /**
   * Copies inside the bucket: CopyObject up to `copyLimit` (5 GiB), UploadPartCopy in parts
   * above. The copy gets `contentType` as a put would; its size is the bucket's (HeadObject).
   */
  async copy(source: string, key: string, options: { contentType?: string } = {}): Promise<{ size: number }> {
    assertValidSourceKey(source);
    assertValidKey(key);
    const what = `copy ${source} to ${key}`;
    try {
      const from = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.prefix + source }));
      const size = from.ContentLength ?? 0;
      const copySource = `${this.bucket}/${(this.prefix + source).split('/').map(encodeURIComponent).join('/')}`;
      if (size <= (this.options.copyLimit ?? MAX_COPY_OBJECT)) {
        await this.client.send(
          new CopyObjectCommand({ Bucket: this.bucket, Key: this.prefix + key, CopySource: copySource, MetadataDirective: 'REPLACE', ContentType: options.contentType }),
        );
      } else {
        await this.copyInParts(copySource, key, size, options.contentType);
      }
      const copied = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }));
      return { size: copied.ContentLength ?? 0 };
    } catch (err) {
      if (isNotFound(err)) throw new BlobNotFound(source, { cause: err });
      throw this.wrap(err, what, 's3:GetObject and s3:PutObject');
    }
  }

  /** A multipart upload of `key` whose parts are ranges of `copySource`; aborted if any part fails. */
  private async copyInParts(copySource: string, key: string, size: number, contentType?: string): Promise<void> {
    const Key = this.prefix + key;
    const partSize = Math.max(Math.min(this.options.copyLimit ?? MAX_COPY_OBJECT, COPY_PART_SIZE), Math.ceil(size / MAX_PARTS));
    const count = Math.ceil(size / partSize);
    const created = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key, ContentType: contentType }));
    const UploadId = created.UploadId;
    if (!UploadId) throw new Error('CreateMultipartUpload answered no UploadId');
    const etags: string[] = [];
    let next = 0;
    let failure: { err: unknown } | undefined;
    // Each worker stops at the first failure; all settle before the abort, so no part lands after it.
    const worker = async () => {
      while (!failure && next < count) {
        const n = next++;
        const start = n * partSize;
        const range = `bytes=${start}-${Math.min(size, start + partSize) - 1}`;
        try {
          const res = await this.client.send(
            new UploadPartCopyCommand({ Bucket: this.bucket, Key, UploadId, PartNumber: n + 1, CopySource: copySource, CopySourceRange: range }),
          );
          etags[n] = res.CopyPartResult?.ETag ?? '';
        } catch (err) {
          failure ??= { err };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(this.options.queueSize, count)) }, worker));
    try {
      if (failure) throw failure.err;
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key,
          UploadId,
          MultipartUpload: { Parts: etags.map((ETag, i) => ({ PartNumber: i + 1, ETag })) },
        }),
      );
    } catch (err) {
      await this.abortMultipart(key, UploadId);
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    try {
      // S3 answers 204 for a missing key too, which makes this idempotent.
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
    } catch (err) {
      throw this.wrap(err, `delete ${key}`);
    }
  }

  async list({ prefix = '', cursor, limit = 1000 }: ListOptions = {}): Promise<ListPage> {
    const items: BlobInfo[] = [];
    // The cursor is the last key looked at (shown or hidden), so pages resume with StartAfter
    // and stay valid across processes, unlike S3's continuation tokens.
    let after = cursor;
    try {
      for (;;) {
        const res = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: this.prefix + prefix,
            StartAfter: after === undefined ? undefined : this.prefix + after,
            MaxKeys: limit - items.length,
          }),
        );
        for (const object of res.Contents ?? []) {
          if (object.Key === undefined) continue;
          after = object.Key.slice(this.prefix.length);
          // Keys under a dot directory are not blobs: probes, and resumable uploads in progress (`.tus/`).
          if (after.startsWith('.')) continue;
          items.push({ key: after, size: object.Size ?? 0, modifiedAt: object.LastModified ?? new Date(0) });
        }
        if (!res.IsTruncated) return { items };
        if (items.length >= limit) return { items, cursor: after };
      }
    } catch (err) {
      throw this.wrap(err, 'list');
    }
  }

  async probe(): Promise<void> {
    try {
      await this.probeOnce();
    } catch (err) {
      // S3 answers an occasional 500 InternalError ("Please try again"): one retry, so a process
      // doesn't refuse to start over it. Refusals and timeouts are not retried (one round of timeouts).
      const status = httpStatus((err as { cause?: unknown }).cause);
      if (status === undefined || status < 500) throw err;
      await this.probeOnce();
    }
  }

  private async probeOnce(): Promise<void> {
    const Key = `${this.prefix}${PROBE_DIR}${randomUUID()}`;
    const bucket = `bucket "${this.bucket}"`;
    let step = `writing a probe object to ${bucket}`;
    let written = false;
    try {
      await this.probeClient.send(new PutObjectCommand({ Bucket: this.bucket, Key, Body: 'probe' }));
      written = true;
      step = `reading the probe object back from ${bucket}`;
      const res = await this.probeClient.send(new GetObjectCommand({ Bucket: this.bucket, Key }));
      const text = await res.Body?.transformToString();
      if (text !== 'probe') throw new Error(`probe object read back as ${JSON.stringify(text)}`);
      step = `deleting the probe object from ${bucket}`;
      await this.probeClient.send(new DeleteObjectCommand({ Bucket: this.bucket, Key }));
    } catch (err) {
      if (written) await this.probeClient.send(new DeleteObjectCommand({ Bucket: this.bucket, Key })).catch(() => undefined);
      throw new StoreUnavailable(this.probeMessage(err, step), { cause: err });
    }
  }

  /**
   * Asks for the bucket (HeadBucket: one request, no object written): the endpoint answers, the
   * bucket exists and the keys may list it (`s3:ListBucket`, which the doctor needs anyway).
   */
  async check(): Promise<void> {
    const step = `checking bucket "${this.bucket}"`;
    try {
      await this.probeClient.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      // A HEAD answer has no body, so a missing bucket is a bare 404 rather than NoSuchBucket.
      const missing = httpStatus(err) === 404 ? Object.assign(new Error('NoSuchBucket'), { name: 'NoSuchBucket', cause: err }) : err;
      throw new StoreUnavailable(this.probeMessage(missing, step), { cause: err });
    }
  }

  /** A URL that downloads the blob straight from the bucket, without going through stowage. */
  async presignGet(key: string, options: PresignGetOptions): Promise<string> {
    const command = new GetObjectCommand({
      Bucket: this.bucket,
      Key: this.objectKey(key),
      ResponseContentDisposition: options.responseContentDisposition,
      ResponseContentType: options.responseContentType,
    });
    return getSignedUrl(this.presignClient, command, { expiresIn: options.expiresIn });
  }

  /**
   * A URL a client can PUT the blob's bytes to directly. It must send the same Content-Type
   * (and Content-Length, when given): both are signed.
   */
  async presignPut(key: string, options: PresignPutOptions): Promise<string> {
    const command = new PutObjectCommand({
      Bucket: this.bucket,
      Key: this.objectKey(key),
      ContentType: options.contentType,
      ContentLength: options.contentLength,
    });
    // The presigner signs Content-Length but not Content-Type unless told to.
    return getSignedUrl(this.presignClient, command, { expiresIn: options.expiresIn, signableHeaders: new Set(['content-type']) });
  }

  /** Begins a multipart upload whose parts the client PUTs to presigned URLs (`presignUploadPart`); returns its id. */
  async createMultipartUpload(key: string, options: { contentType: string }): Promise<string> {
    try {
      const res = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: this.objectKey(key), ContentType: options.contentType }));
      if (!res.UploadId) throw new Error('CreateMultipartUpload answered no UploadId');
      return res.UploadId;
    } catch (err) {
      throw this.wrap(err, `begin a multipart upload of ${key}`, 's3:PutObject');
    }
  }

  /** A URL to PUT one part's bytes to; `contentLength` is signed, as in `presignPut`. */
  async presignUploadPart(key: string, uploadId: string, partNumber: number, options: { expiresIn: number; contentLength: number }): Promise<string> {
    const command = new UploadPartCommand({
      Bucket: this.bucket,
      Key: this.objectKey(key),
      UploadId: uploadId,
      PartNumber: partNumber,
      ContentLength: options.contentLength,
    });
    return getSignedUrl(this.presignClient, command, { expiresIn: options.expiresIn });
  }

  /** The parts uploaded so far, in order (ListParts, 1,000 at a time). */
  async listParts(key: string, uploadId: string): Promise<UploadedPart[]> {
    const parts: UploadedPart[] = [];
    let marker: string | undefined;
    try {
      do {
        const res = await this.client.send(new ListPartsCommand({ Bucket: this.bucket, Key: this.objectKey(key), UploadId: uploadId, PartNumberMarker: marker }));
        for (const { PartNumber, ETag, Size } of res.Parts ?? []) {
          if (PartNumber !== undefined && ETag !== undefined) parts.push({ partNumber: PartNumber, etag: ETag, size: Size ?? 0 });
        }
        marker = res.IsTruncated ? res.NextPartNumberMarker : undefined;
      } while (marker);
    } catch (err) {
      throw this.wrap(err, `list the parts of ${key}`, 's3:ListMultipartUploadParts');
    }
    return parts;
  }

  /**
   * Assembles the object from `parts` (ascending part numbers, each with the ETag its PUT
   * answered). A list S3 refuses throws PartsRejected; the upload then stays open to try again.
   */
  async completeMultipartUpload(key: string, uploadId: string, parts: { partNumber: number; etag: string }[]): Promise<void> {
    try {
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: this.objectKey(key),
          UploadId: uploadId,
          MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag })) },
        }),
      );
    } catch (err) {
      const name = errorName(err);
      if (name && PART_ERRORS.has(name)) throw new PartsRejected(`${name}: ${err instanceof Error ? err.message : String(err)}`);
      throw this.wrap(err, `complete the multipart upload of ${key}`, 's3:PutObject');
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
    this.probeClient.destroy();
    this.presignClient.destroy();
  }

  /**
   * One line naming the variable the operator has to change and the step that failed, since this
   * runs at startup.
   */
  private probeMessage(err: unknown, step: string): string {
    const name = errorName(err);
    const where = `bucket "${this.bucket}" at ${this.endpointName}`;
    const during = `while ${step}`;
    const fix = this.options.endpoint ? 'check S3_ENDPOINT, or unset it to use AWS S3' : 'check the network, or set S3_ENDPOINT';
    const timeout = timeoutOf(err);
    if (timeout === 'connect') {
      return `S3_ENDPOINT: could not connect to ${this.endpointName} within ${seconds(this.connectTimeoutMs)} (S3_CONNECT_TIMEOUT_MS) ${during} (${fix})`;
    }
    if (timeout === 'request') {
      return `S3_ENDPOINT: ${this.endpointName} accepted the connection but sent no answer within ${seconds(this.requestTimeoutMs)} (S3_REQUEST_TIMEOUT_MS) ${during} (${fix})`;
    }
    const code = networkCode(err);
    if (code === 'ECONNREFUSED') return `S3_ENDPOINT: ${this.endpointName} refused the connection ${during} (${fix})`;
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `S3_ENDPOINT: the host of ${this.endpointName} was not found (${code}) ${during} (${fix})`;
    if (code) return `S3_ENDPOINT: cannot connect to ${this.endpointName} (${code}) ${during} (${fix})`;
    if (name === 'NoSuchBucket') {
      return `S3_BUCKET: bucket "${this.bucket}" does not exist at ${this.endpointName} (create it, or set S3_BUCKET)`;
    }
    if (name === 'CredentialsProviderError') {
      return `AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY: no S3 credentials found (set both)`;
    }
    if ((name && CREDENTIAL_ERRORS.has(name)) || httpStatus(err) === 403) {
      return `AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY: access to ${where} was denied (${name ?? 'HTTP 403'}; check the keys and the bucket's permissions)`;
    }
    if (name === 'PermanentRedirect' || name === 'AuthorizationHeaderMalformed' || httpStatus(err) === 301) {
      return `S3_REGION: ${where} is not in region "${this.options.region}" (set S3_REGION to the bucket's region)`;
    }
    const status = notS3Status(err);
    if (status !== undefined) {
      return `S3_ENDPOINT: ${this.endpointName} answered HTTP ${status} with something other than S3 ${during} (check that S3_ENDPOINT is the S3 API endpoint)`;
    }
    return `S3: ${where} failed ${during}: ${firstLine(err)}`;
  }

  /**
   * A body that fails while it is read (S3 stalls mid-download) fails as a call would, so a
   * download whose first byte never came answers 503 rather than 500.
   */
  private wrapStream(body: Readable, what: string): Readable {
    const wrap = (err: unknown) => this.wrap(err, what);
    return Readable.from(
      (async function* () {
        try {
          yield* body as AsyncIterable<Buffer>;
        } catch (err) {
          throw wrap(err);
        }
      })(),
      { objectMode: false },
    );
  }

  /** Outages and misconfiguration become StoreUnavailable (503); anything else is a bug. */
  private wrap(err: unknown, what: string, permission?: string): unknown {
    const status = httpStatus(err);
    const name = errorName(err);
    const outage = networkCode(err) !== undefined || (status !== undefined && status >= 500);
    const denied = (name !== undefined && CREDENTIAL_ERRORS.has(name)) || status === 403;
    if (isStall(err)) return new StoreUnavailable(`The ${this.driver} store did not answer in time to ${what}.`, { cause: err });
    // Valid keys refused this one call: the policy lacks its permission.
    if (permission && (name === 'AccessDenied' || (status === 403 && !CREDENTIAL_ERRORS.has(name ?? '')))) {
      return new StorePermissionMissing(`The ${this.driver} store was denied to ${what} (${name ?? 'HTTP 403'}): its keys need ${permission}.`, permission, { cause: err });
    }
    if (outage || denied || name === 'NoSuchBucket') {
      return new StoreUnavailable(`The ${this.driver} store failed to ${what}.`, { cause: err });
    }
    return err;
  }
}
