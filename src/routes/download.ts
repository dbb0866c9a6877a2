import type { Request, RequestHandler, Response } from 'express';
import parseRange from 'range-parser';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Config } from '../config';
import { RangeNotSatisfiable } from '../errors';
import type { Files } from '../files/files';
import { contentDisposition } from '../files/names';
import type { ServiceMetrics } from '../metrics/metrics';
import { outcomeOf } from '../metrics/outcome';
import type { ByteRange } from '../storage/store';

/**
 * Up to this size a volume or memory file is read into one buffer and sent with `res.end`: a
 * read stream, the byte meter and `pipeline` cost more than the read itself (16 KiB downloads
 * took 690 µs of CPU instead of 1,010; bench/README.md). Memory per request stays this small.
 */
const SMALL_BYTES = 64 * 1024;

export type Disposition = 'attachment' | 'inline';

/** What a download sends: one file of one owner, as an attachment or inline, maybe only until `notAfter`. */
export interface DownloadTarget {
  owner: string;
  id: string;
  /** What was asked for; `inline` is honoured only for types safe to show (see `shownAs`). */
  disposition: Disposition;
  /** A link's expiry: a redirect's presigned URL must not outlive it. */
  notAfter?: Date;
}

/**
 * Types a browser shows without running anything: raster images, PDF (its viewer runs no page
 * script), plain text. Not SVG or HTML, which can carry scripts, nor anything unknown.
 */
const SAFE_INLINE = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/avif', 'image/bmp', 'application/pdf', 'text/plain']);

/** How a file is sent: `inline` only when asked for and its type is safe to render; otherwise `attachment`. */
export function shownAs(requested: Disposition, contentType: string): Disposition {
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  return requested === 'inline' && SAFE_INLINE.has(type) ? 'inline' : 'attachment';
}

/** The API's own download: the caller's file named in the path, always an attachment. */
const fromPath = (req: Request): DownloadTarget => ({ owner: req.owner, id: String(req.params.id), disposition: 'attachment' });

/**
 * The byte range to send for a Range header on a file of `size` bytes: undefined for the whole
 * file, a range inside the file, or RangeNotSatisfiable (416). Multiple ranges are answered with
 * the whole file (allowed by RFC 9110), and so are a malformed header and an If-Range that
 * doesn't match the ETag. Pure, for any input (property-tested).
 */
export function requestedRange(size: number, header: string | undefined, ifRange: string | undefined, etag: string): ByteRange | undefined {
  if (!header) return undefined;
  if (ifRange && ifRange !== etag) return undefined;
  const ranges = parseRange(size, header, { combine: true });
  if (ranges === -1) throw new RangeNotSatisfiable(size);
  if (ranges === -2 || ranges.type !== 'bytes' || ranges.length !== 1) return undefined;
  const { start, end } = ranges[0];
  // range-parser clamps to the file; anything else would be its bug, answered with the whole file.
  if (!(Number.isSafeInteger(start) && Number.isSafeInteger(end) && start >= 0 && start <= end && end < size)) return undefined;
  return { start, end };
}

/** Seconds a presigned URL may live: the configured lifetime, cut to what is left of the link. */
function presignSeconds(configured: number, notAfter: Date | undefined): number {
  if (!notAfter) return configured;
  return Math.min(configured, Math.floor((notAfter.getTime() - Date.now()) / 1000));
}

/**
 * `GET|HEAD /v1/files/:id/content` (and a download link, whose `target` is the link's), through
 * `Files.read` for a small file in a store that can, else `Files.open` (the record's store, else
 * the mirror; a blob found nowhere answers 404 `file_missing` instead of a broken stream). Headers come from the record, so a HEAD costs the
 * store only an existence check. Every download carries `Content-Security-Policy: sandbox`, so
 * even a file a browser renders runs no script with this origin's rights. With
 * DOWNLOAD_MODE=redirect, a store that can presign answers with a redirect to the bucket instead,
 * the URL expiring no later than the link it came from. With DOWNLOAD_OFFLOAD, a GET of a file on
 * the volume answers with the headers and `X-Accel-Redirect` or `X-Sendfile` instead of a body:
 * the proxy in front sends the bytes.
 */
export function downloadContent(
  deps: { downloads: Config['downloads']; files: Files; metrics: ServiceMetrics },
  target: (req: Request, res: Response) => DownloadTarget = fromPath,
): RequestHandler {
  const { files, metrics, downloads } = deps;

  const send = async (req: Request, res: Response) => {
    const { owner, id, disposition: requested, notAfter } = target(req, res);
    const record = await files.readable(owner, id);
    const disposition = shownAs(requested, record.content_type);
    const expiresIn = presignSeconds(downloads.presignExpiresS, notAfter);
    // Under a second left of the link: served through stowage rather than signed for 0 s.
    const url = downloads.mode === 'redirect' && expiresIn >= 1 ? await files.presignedUrl(record, { expiresIn, disposition }) : undefined;
    if (url) {
      // The URL stops working after its expiry: nobody may cache the redirect.
      res.setHeader('Cache-Control', 'no-store');
      res.redirect(302, url);
      if (req.method === 'GET') metrics.download('redirected');
      return;
    }
    const size = Number(record.size);
    // A direct upload completed without a sha256 has none; its id names immutable bytes too.
    const etag = `"${record.sha256 ?? record.id}"`;
    res.setHeader('ETag', etag);
    res.setHeader('Last-Modified', new Date(record.updated_at).toUTCString());
    res.setHeader('Accept-Ranges', 'bytes');
    res.setHeader('Cache-Control', 'private, no-cache');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Content-Security-Policy', 'sandbox');
    res.setHeader('Content-Disposition', contentDisposition(record.name, disposition));
    res.setHeader('Content-Type', record.content_type);

    if (req.fresh) {
      res.status(304).end();
      if (req.method === 'GET') metrics.download('not_modified');
      return;
    }
    let range: ByteRange | undefined;
    try {
      range = requestedRange(size, req.get('range'), req.get('if-range'), etag);
    } catch (err) {
      res.setHeader('Content-Range', `bytes */${size}`);
      throw err;
    }
    // The proxy in front sends the bytes from the volume, and the range (an unsatisfiable one was
    // answered above, in the API's error shape); a HEAD is answered here, as cheaply.
    const offload = req.method === 'GET' ? downloads.offload : undefined;
    const key = offload && (await files.volumeKey(record));
    if (offload && key) {
      res.setHeader(offload.header, `${offload.prefix}/${key}`);
      // The proxy says it itself (nginx would send both).
      res.removeHeader('Accept-Ranges');
      res.end();
      metrics.download('offloaded');
      return;
    }
    if (range) {
      res.status(206);
      res.setHeader('Content-Range', `bytes ${range.start}-${range.end}/${size}`);
    }
    res.setHeader('Content-Length', String(range ? range.end - range.start + 1 : size));

    if (req.method === 'HEAD') {
      await files.ensureReadable(record, req.log);
      res.end();
      return;
    }
    const expected = range ? range.end - range.start + 1 : size;
    const bytes = expected <= SMALL_BYTES ? await files.read(record, range?.start ?? 0, expected) : undefined;
    if (bytes) {
      // A blob shorter than its record failed above, in the API's error shape: nothing was sent.
      metrics.download(range ? 'partial' : 'full', expected);
      res.end(bytes);
      return;
    }
    const body = await files.open(record, range, req.log);
    // The outcome is counted as the last byte passes, before the client can have it all, so a
    // scrape right after a download always includes it.
    let sent = 0;
    let counted = false;
    const count = () => {
      counted = true;
      metrics.download(range ? 'partial' : 'full', sent);
    };
    const meter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        sent += chunk.length;
        if (sent >= expected && !counted) count();
        done(null, chunk);
      },
      flush(done) {
        // A body that ended early without an error must not pass for the whole file: failing
        // here destroys the response, so the client sees a broken download, never a short one.
        if (sent < expected) return done(new Error(`The store's body ended after ${sent} of ${expected} bytes.`));
        if (!counted) count();
        done();
      },
    });
    // A client that goes away closes the response early (premature close): nothing to clean up.
    // Any other error is the store's (S3 gone mid-stream): it is logged, and the response and its
    // connection are destroyed, so the client sees the download fail; the record stays as it is.
    await pipeline(body, meter, res).catch((err: unknown) => {
      if ((err as { code?: unknown }).code !== 'ERR_STREAM_PREMATURE_CLOSE') req.log.error({ err, fileId: record.id }, 'download stream failed');
      res.destroy();
      if (!counted) metrics.download('interrupted', sent);
    });
  };

  return async (req: Request, res: Response) => {
    try {
      await send(req, res);
    } catch (err) {
      if (req.method === 'GET') metrics.download(outcomeOf(err));
      throw err;
    }
  };
}
