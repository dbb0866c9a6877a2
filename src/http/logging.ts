import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import pino, { type Logger } from 'pino';
import { pinoHttp } from 'pino-http';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/** A signed link's signature in a URL: whoever reads the log must not be able to use the link. */
const LINK_SIGNATURE = /(\/v1\/(?:links|upload-links|page-links)\/[A-Za-z0-9_-]+)\.[A-Za-z0-9_-]+/;

/** The URL as logged: a link's payload (ids, owner, expiry) is kept, its signature is not. */
export function loggedUrl(url: string): string {
  return url.replace(LINK_SIGNATURE, '$1.<signature>');
}

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino({ level, base: { service: 'stowage' } }, destination);
}

/**
 * One log line per request with its id. A well-formed incoming `X-Request-Id` (from Heroku's
 * router or a caller) is kept so a request can be followed across services; it is echoed back.
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
    serializers: {
      req: (req: { id: unknown; method: string; url: string }) => ({ id: req.id, method: req.method, url: loggedUrl(req.url) }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
    },
  });
}
