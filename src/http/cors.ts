import cors from 'cors';
import type { RequestHandler } from 'express';
import { ROUTE_TABLE } from '../auth/route-table';
import { MACHINE_HEADER } from '../catalog/placement';

/**
 * Request headers a browser app may send: credentials, the owner a service acts for, conditional
 * and ranged reads, the tus protocol's, and Fly's `fly-force-instance-id` (a resumable upload's
 * chunks sent to the Machine that holds it).
 */
export const CORS_ALLOWED_HEADERS = [
  'Authorization',
  'Content-Type',
  'X-Owner',
  'Range',
  'If-None-Match',
  'If-Range',
  'X-Request-Id',
  'Tus-Resumable',
  'Upload-Length',
  'Upload-Metadata',
  'Upload-Offset',
  'Upload-Checksum',
  'fly-force-instance-id',
  'Stowage-Expires-In',
];

/** Response headers its scripts may read, beyond the safelisted ones (Content-Type, Content-Length, Last-Modified...). */
export const CORS_EXPOSED_HEADERS = [
  'Location',
  'ETag',
  'Content-Range',
  'Content-Disposition',
  'Accept-Ranges',
  'X-Request-Id',
  'WWW-Authenticate',
  'Retry-After',
  'RateLimit',
  'RateLimit-Policy',
  // tus: where an upload is, and which Machine holds it (on Fly volumes).
  'Tus-Resumable',
  'Tus-Version',
  'Upload-Offset',
  'Upload-Length',
  'Upload-Expires',
  MACHINE_HEADER,
];

/** How long a browser may reuse a preflight's answer (Chromium caps it at 2 h). */
export const CORS_MAX_AGE_S = 600;

/**
 * CORS for the browser apps in CORS_ORIGINS, mounted before authentication: a preflight
 * (`OPTIONS` with `Access-Control-Request-Method`) carries no credentials, so it is answered
 * here, 204, and never reaches the guard. An origin not in the list gets no
 * `Access-Control-Allow-*` headers and the browser refuses its request. Credentials are bearer
 * tokens in `Authorization`, so cookies are never allowed cross-origin (no
 * `Access-Control-Allow-Credentials`). The methods are the ones the route table serves.
 */
export function crossOrigin(origins: string[]): RequestHandler {
  const methods = [...new Set(Object.keys(ROUTE_TABLE).map((route) => route.split(' ')[0]))];
  return cors({
    origin: origins,
    methods,
    allowedHeaders: CORS_ALLOWED_HEADERS,
    exposedHeaders: CORS_EXPOSED_HEADERS,
    credentials: false,
    maxAge: CORS_MAX_AGE_S,
    preflightContinue: false,
    optionsSuccessStatus: 204,
  });
}
