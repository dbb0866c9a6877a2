import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import pino, { type Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import type { Principal } from '../auth/principal';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/** A signed link's signature in a URL: whoever reads the log must not be able to use the link. */
const LINK_SIGNATURE = /(\/v1\/(?:links|upload-links|page-links)\/[A-Za-z0-9_-]+)\.[A-Za-z0-9_-]+/;

/** The URL as logged: a link's payload (ids, owner, expiry) is kept, its signature is not. */
export function loggedUrl(url: string): string {
  return url.replace(LINK_SIGNATURE, '$1.<signature>');
}

/**
 * Credentials never reach a log line: not in headers (should anything log a request's or a
 * response's headers), and not in a URL's query (signed links, presigned URLs).
 */
export const REDACTED = '[redacted]';
const REDACT_PATHS = [
  'headers.authorization',
  'headers.cookie',
  'headers["set-cookie"]',
  '*.headers.authorization',
  '*.headers.cookie',
  '*.headers["set-cookie"]',
  '*.headers["x-amz-security-token"]',
];
const SECRET_QUERY = /([?&](?:token|access_token|sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token)=)[^&#]*/gi;

/** A URL as logged: the values of query parameters that carry credentials replaced. */
export function redactUrl(url: string): string {
  return url.replace(SECRET_QUERY, `$1${REDACTED}`);
}

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino({ level, base: { service: 'stowage' }, redact: { paths: REDACT_PATHS, censor: REDACTED } }, destination);
}

/**
 * One log line per request with its id, and who made it once the guard knows: `auth` is how
 * and as whom (`api_key:<key id>`, `jwt:<subject>`, `session:<owner>`, `dev:local`), never a
 * token. A well-formed incoming `X-Request-Id` (from Heroku's router or a caller) is kept so a
 * request can be followed across services; it is echoed back.
 */
export function requestLogging(log: Logger) {
  return pinoHttp({
    logger: log,
    genReqId(req: IncomingMessage, res: ServerResponse) {
      const incoming = req.headers['x-request-id'];
      const id = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
      res.setHeader('X-Request-Id', id);
      return id;
    },
    customLogLevel(_req, res, err) {
      if (err || res.statusCode >= 500) return 'error';
      return 'info';
    },
    // Read when the response finishes too: the guard has set these by then.
    customProps(req: IncomingMessage & { principal?: Principal; owner?: string }) {
      const { principal } = req;
      return principal ? { auth: `${principal.via}:${principal.id}`, owner: req.owner } : {};
    },
    serializers: {
      req: (req: { id: unknown; method: string; url: string }) => ({ id: req.id, method: req.method, url: redactUrl(loggedUrl(req.url)) }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
    },
  });
}
