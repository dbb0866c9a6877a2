import { z } from 'zod';
import { durationSetting as duration } from './units';

/** How long the server waits on a client, and how many uploads it takes at once. */
export interface HttpSettings {
  /** Node's `server.headersTimeout`: the request line and headers must arrive within this. */
  headersTimeoutMs: number;
  /**
   * The body of a request other than an upload must arrive within this (from its headers).
   * Uploads have no overall limit (a large file on a slow link takes what it takes).
   */
  requestTimeoutMs: number;
  /** No byte of a request body for this long (uploads included) ends the request. */
  bodyIdleTimeoutMs: number;
  /** Node's `server.keepAliveTimeout`: an idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
  /** Uploads in flight at once, per client address (`req.ip`) and in all; more get 503 `busy`. */
  uploadSlots: { perClient: number; total: number };
}

/** Heroku's router (Router 2.0) closes idle keep-alive connections to a dyno after 90 s. */
const PLATFORM_KEEP_ALIVE_MS = 95_000;

/** The variables, spread into the one config schema. */
export function httpFields(parsers: { positiveInt: (what: string) => z.ZodType<number, string> }) {
  return {
    HEADERS_TIMEOUT: duration(100, '30s').default(30_000),
    REQUEST_TIMEOUT: duration(100, '60s').default(60_000),
    BODY_IDLE_TIMEOUT: duration(100, '30s').default(30_000),
    KEEP_ALIVE_TIMEOUT: duration(100, '5s').optional(),
    UPLOADS_PER_CLIENT: parsers.positiveInt('uploads').default(8),
    UPLOADS_MAX: parsers.positiveInt('uploads').default(64),
  };
}

type Parsed = z.output<z.ZodObject<ReturnType<typeof httpFields>>> & { DYNO?: string; FLY_APP_NAME?: string };

export function readHttp(e: Parsed): HttpSettings {
  // Behind a platform's proxy, the proxy must be the side that closes an idle connection: a
  // request it sends just as the server closes one would fail. Direct clients get Node's 5 s.
  const behindPlatformProxy = Boolean(e.DYNO || e.FLY_APP_NAME);
  return {
    headersTimeoutMs: e.HEADERS_TIMEOUT,
    requestTimeoutMs: e.REQUEST_TIMEOUT,
    bodyIdleTimeoutMs: e.BODY_IDLE_TIMEOUT,
    keepAliveTimeoutMs: e.KEEP_ALIVE_TIMEOUT ?? (behindPlatformProxy ? PLATFORM_KEEP_ALIVE_MS : 5_000),
    uploadSlots: { perClient: Math.min(e.UPLOADS_PER_CLIENT, e.UPLOADS_MAX), total: e.UPLOADS_MAX },
  };
}
