import type { Readable } from 'node:stream';
import { StandardRetryStrategy } from '@smithy/core/retry';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { idleTimeout } from './idle-timeout';
import { DEFAULT_S3_CONNECT_TIMEOUT_MS, DEFAULT_S3_REQUEST_TIMEOUT_MS, type S3StoreOptions } from './s3-options';

/**
 * An S3 client's configuration for a bucket of `options`: its endpoint, credentials and checksum
 * mode, and HTTP with the timeouts below (`maxAttempts` counts the first one). Every client that
 * talks to the bucket (the store's, the doctor's) is made from it.
 */
export function s3ClientConfig(options: S3StoreOptions, maxAttempts: number) {
  const checksums = options.checksums === 'when_required' ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED';
  return {
    region: options.region,
    endpoint: options.endpoint,
    forcePathStyle: options.forcePathStyle,
    credentials: options.credentials,
    requestChecksumCalculation: checksums,
    responseChecksumValidation: checksums,
    // Without timeouts an endpoint that accepts a connection and never answers hangs a call (and
    // start-up) for ever: see s3Http.
    ...s3Http({
      connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_S3_CONNECT_TIMEOUT_MS,
      requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_S3_REQUEST_TIMEOUT_MS,
      maxAttempts,
    }),
  } as const;
}

/**
 * How the S3 client talks HTTP so that no call can hang on an endpoint that accepts a connection
 * and then goes quiet:
 * - a connection must be made within `connectTimeoutMs` (S3_CONNECT_TIMEOUT_MS);
 * - the answer's headers must arrive within `requestTimeoutMs` of sending the request, its body
 *   (an upload part) included (S3_REQUEST_TIMEOUT_MS);
 * - after that, an answer's body fails when it sends nothing for `requestTimeoutMs` while it is
 *   being read (a listing's XML, a download). A download whose client reads slowly is not cut:
 *   only waiting on S3 counts.
 * An attempt that timed out is not retried: the endpoint is stalled, and a caller (a client told
 * 503 with Retry-After, a task retried with backoff) is better off hearing it within one timeout
 * than three. Other transient failures (a reset connection, a 500) are retried as the SDK does.
 */
export function s3Http(o: { connectTimeoutMs: number; requestTimeoutMs: number; maxAttempts: number }) {
  return {
    requestHandler: new IdleTimeoutHandler(o.requestTimeoutMs, { connectionTimeout: o.connectTimeoutMs, requestTimeout: o.requestTimeoutMs, throwOnRequestTimeout: true }),
    retryStrategy: new StallsNotRetried(o.maxAttempts),
  };
}

/** The handler's reset connections carry TimeoutError as their name too; a stall is one that timed out. */
const NOT_STALLS = new Set(['ECONNRESET', 'EPIPE']);

/** Whether `err` is an S3 call giving up on a silent endpoint (connect, request or body timeout). */
export function isStall(err: unknown): boolean {
  const e = err as { name?: unknown; code?: unknown } | null;
  return e?.name === 'TimeoutError' && !(typeof e.code === 'string' && NOT_STALLS.has(e.code));
}

/** An answer's body that stopped arriving; named so the SDK and `isStall` see a timeout. */
function bodyStalled(ms: number): Error {
  return Object.assign(new Error(`S3 sent nothing for ${ms / 1000} s in the middle of an answer (S3_REQUEST_TIMEOUT_MS)`), { name: 'TimeoutError', code: 'ETIMEDOUT' });
}

class IdleTimeoutHandler extends NodeHttpHandler {
  constructor(
    private readonly idleMs: number,
    options: ConstructorParameters<typeof NodeHttpHandler>[0],
  ) {
    super(options);
  }

  override async handle(...args: Parameters<NodeHttpHandler['handle']>): ReturnType<NodeHttpHandler['handle']> {
    const { response } = await super.handle(...args);
    response.body = idleTimeout(response.body as Readable, this.idleMs, () => bodyStalled(this.idleMs));
    return { response };
  }
}

class StallsNotRetried extends StandardRetryStrategy {
  override async refreshRetryTokenForRetry(...[token, info]: Parameters<StandardRetryStrategy['refreshRetryTokenForRetry']>) {
    if (isStall(info.error)) throw info.error;
    return super.refreshRetryTokenForRetry(token, info);
  }
}
