import type { Request, RequestHandler } from 'express';
import { BodyTimeout } from '../errors';

/** A request whose body is still arriving. */
interface Watch {
  req: Request;
  /** The socket's `bytesRead` when last seen, and when it last moved. */
  bytesRead: number;
  lastProgressAt: number;
  /** When the whole body must be in (REQUEST_TIMEOUT); none for uploads. */
  deadline?: number;
  onTimeout(err: BodyTimeout): void;
}

const watches = new WeakMap<Request, Watch>();
const timedOut = new WeakMap<Request, BodyTimeout>();

/** Why the request's body was cut off, if it was: the error its route saw was only the consequence. */
export function bodyTimedOut(req: Request): BodyTimeout | undefined {
  return timedOut.get(req);
}

/**
 * Request bodies that stop arriving end the request: no byte for `idleMs` (BODY_IDLE_TIMEOUT), or,
 * for anything but an upload, the body not complete within `requestMs` (REQUEST_TIMEOUT). Node's own
 * `server.requestTimeout` can't tell an upload from the rest, so the server leaves it off and this
 * does the job per request.
 *
 * By default a timed-out request is destroyed (its connection too; the route reading the body fails
 * and the error handler logs `body_timeout`). An upload route takes over with `takeOverBodyTimeout`
 * to clean up and answer 408 first. Time the server itself is not reading (backpressure from a slow
 * store) does not count: progress is the socket's `bytesRead`, checked a few times per timeout, one
 * timer for every request.
 */
export function bodyTimeouts(settings: { bodyIdleTimeoutMs: number; requestTimeoutMs: number }): RequestHandler {
  const { bodyIdleTimeoutMs: idleMs, requestTimeoutMs: requestMs } = settings;
  const active = new Set<Watch>();
  const tickMs = Math.min(1000, Math.max(25, Math.floor(Math.min(idleMs, requestMs) / 8)));
  let timer: NodeJS.Timeout | undefined;

  const check = () => {
    const now = Date.now();
    for (const watch of active) {
      const { req } = watch;
      const socket = req.socket;
      if (req.complete || !socket || socket.destroyed) {
        active.delete(watch);
        continue;
      }
      const bytesRead = socket.bytesRead;
      // The server not reading (its buffers full) is not the client's silence.
      if (bytesRead !== watch.bytesRead || req.isPaused() || socket.isPaused()) {
        watch.bytesRead = bytesRead;
        watch.lastProgressAt = now;
      }
      let err: BodyTimeout | undefined;
      if (now - watch.lastProgressAt >= idleMs) {
        err = new BodyTimeout(`No byte of the request body arrived for ${seconds(idleMs)} (BODY_IDLE_TIMEOUT), so the request was ended.`);
      } else if (watch.deadline !== undefined && now >= watch.deadline) {
        err = new BodyTimeout(`The request body did not arrive within ${seconds(requestMs)} (REQUEST_TIMEOUT), so the request was ended.`);
      }
      if (err) {
        active.delete(watch);
        timedOut.set(req, err);
        req.log?.info({ code: err.code, bytesRead }, err.message);
        watch.onTimeout(err);
      }
    }
    if (active.size === 0) {
      clearInterval(timer);
      timer = undefined;
    }
  };

  return (req, res, next) => {
    if (hasBody(req) && !req.complete && req.socket) {
      const now = Date.now();
      // Destroyed without an error: nothing may be listening for one yet (an 'error' nobody hears
      // would end the process). What happened is kept for the error handler (`bodyTimedOut`).
      const watch: Watch = { req, bytesRead: req.socket.bytesRead, lastProgressAt: now, deadline: now + requestMs, onTimeout: () => req.destroy() };
      active.add(watch);
      watches.set(req, watch);
      // Dropped when the response ends, not at the next tick: held up to a second, every finished
      // request (and what its route's onTimeout holds) outlived the young generation and piled up
      // in the old one.
      res.once('close', () => active.delete(watch));
      timer ??= setInterval(check, tickMs).unref();
    }
    next();
  };
}

/**
 * For an upload: no overall deadline (a large file on a slow link takes what it takes, as long as
 * bytes keep coming), and `onTimeout` instead of destroying the request.
 */
export function takeOverBodyTimeout(req: Request, onTimeout: (err: BodyTimeout) => void): void {
  const watch = watches.get(req);
  if (!watch) return;
  watch.deadline = undefined;
  watch.onTimeout = onTimeout;
}

function hasBody(req: Request): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
