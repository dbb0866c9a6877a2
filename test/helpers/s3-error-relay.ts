import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** What S3 would answer instead of the bucket: an HTTP status and an S3 error code. */
export interface S3ErrorAnswer {
  status: number;
  code: string;
  message: string;
}

/**
 * An HTTP relay to an S3 endpoint (s3rver) that answers the requests `answer` picks with an S3
 * error document, as S3 does (an InternalError hiccup, an AccessDenied from a narrow policy), and
 * passes every other request through. `answered` hears of each request passed through once its
 * answer has been relayed whole (a test waits for a call to be done, or records what was asked).
 */
export async function startS3ErrorRelay(
  target: string,
  answer: (req: http.IncomingMessage) => S3ErrorAnswer | undefined,
  answered?: (req: http.IncomingMessage, status: number) => void,
): Promise<{ endpoint: string; close(): Promise<void> }> {
  const upstreamUrl = new URL(target);
  const server = http.createServer((req, res) => {
    const error = answer(req);
    if (error) {
      req.resume();
      res.writeHead(error.status, { 'content-type': 'application/xml' });
      res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${error.code}</Code><Message>${error.message}</Message></Error>`);
      return;
    }
    const upstream = http.request({ host: upstreamUrl.hostname, port: upstreamUrl.port, method: req.method, path: req.url, headers: req.headers }, (reply) => {
      res.writeHead(reply.statusCode ?? 502, reply.headers);
      if (answered) res.on('finish', () => answered(req, reply.statusCode ?? 502));
      reply.pipe(res);
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
