import type { Request, RequestHandler, Response } from 'express';
import { create as contentDisposition } from 'content-disposition';
import parseRange from 'range-parser';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import type { FileCatalog, FileRecord } from '../catalog/files';
import type { Config } from '../config';
import { BlobNotFound, Conflict, FILE_MISSING_MESSAGE, FileMissing, NotFound, RangeNotSatisfiable } from '../errors';
import type { ServiceMetrics } from '../metrics/metrics';
import { outcomeOf } from '../metrics/outcome';
import { canPresign } from '../storage/presign';
import type { ByteRange } from '../storage/store';
import type { StoreSet } from '../storage/store-set';
import { MirrorFallback } from '../mirror/fallback';
import { redirectToPresigned } from './download-redirect';


/** Looks up the owner's record and refuses anything but a ready file. */
export async function readyRecord(catalog: FileCatalog, req: Request): Promise<FileRecord> {
  const record = await catalog.get(req.owner, String(req.params.id));
  if (!record) throw new NotFound('No file with that id.');
  switch (record.status) {
    case 'ready':
      return record;
    case 'pending':
      throw new Conflict('The file is still being uploaded.', 'file_pending');
    case 'missing':
      throw new FileMissing(record.status_message ?? FILE_MISSING_MESSAGE);
    case 'failed':
      throw new FileMissing(record.status_message ?? FILE_MISSING_MESSAGE);
  }
}

/**
 * The byte range to send: undefined for the whole file. Multiple ranges are answered with the
 * whole file (allowed by RFC 9110), and an If-Range that doesn't match the ETag does the same.
 */
function requestedRange(req: Request, size: number, etag: string): ByteRange | undefined {
  const header = req.get('range');
  if (!header) return undefined;
  const ifRange = req.get('if-range');
  if (ifRange && ifRange !== etag) return undefined;
  const ranges = parseRange(size, header, { combine: true });
  if (ranges === -1) throw new RangeNotSatisfiable(size);
  if (ranges === -2 || ranges.type !== 'bytes' || ranges.length !== 1) return undefined;
  return { start: ranges[0].start, end: ranges[0].end };
}

/**
 * `GET|HEAD /v1/files/:id/content`, from whichever store holds the record's blob. Headers come
 * from the record (so a HEAD costs the store only an existence check); a blob found missing marks
 * the record `missing` and answers 404 `file_missing` instead of a broken stream. With
 * DOWNLOAD_MODE=redirect, a store that can presign answers with a redirect to the bucket instead.
 * With STORAGE_MIRROR, a blob gone from its store is served from the mirror (and restored); only
 * when both miss is the record marked missing.
 */
export function downloadContent(deps: {
  config: Config;
  stores: StoreSet;
  catalog: FileCatalog;
  log: Logger;
  metrics: ServiceMetrics;
}): RequestHandler {
  const { stores, catalog, metrics } = deps;
  const { downloads } = deps.config;
  const fallback = new MirrorFallback({ stores, catalog });

  const blobMissing = async (req: Request, record: FileRecord, cause?: unknown) => {
    req.log.error({ fileId: record.id, key: record.key, store: record.store, err: cause }, 'file missing from storage');
    await catalog.setStatus(record.id, 'missing', FILE_MISSING_MESSAGE);
    return new FileMissing(FILE_MISSING_MESSAGE);
  };

  const send = async (req: Request, res: Response) => {
    const record = await readyRecord(catalog, req);
    const store = stores.get(record.store);
    // Checked first so a vanished blob is proxied from the mirror or gets the clear file_missing
    // answer, never the bucket's own error.
    if (downloads.mode === 'redirect' && canPresign(store) && (await store.head(record.key))) {
      await redirectToPresigned(res, store, record, downloads.presignExpiresS);
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
    res.setHeader('Content-Disposition', contentDisposition(record.name, { type: 'attachment' }));
    res.setHeader('Content-Type', record.content_type);

    if (req.fresh) {
      res.status(304).end();
      if (req.method === 'GET') metrics.download('not_modified');
      return;
    }
    let range: ByteRange | undefined;
    try {
      range = requestedRange(req, size, etag);
    } catch (err) {
      res.setHeader('Content-Range', `bytes */${size}`);
      throw err;
    }
    if (range) {
      res.status(206);
      res.setHeader('Content-Range', `bytes ${range.start}-${range.end}/${size}`);
    }
    res.setHeader('Content-Length', String(range ? range.end - range.start + 1 : size));

    if (req.method === 'HEAD') {
      if (!(await store.head(record.key)) && !(await fallback.exists(record, req.log))) throw await blobMissing(req, record);
      res.end();
      return;
    }
    let body;
    try {
      body = await store.get(record.key, range);
    } catch (err) {
      if (!(err instanceof BlobNotFound)) throw err;
      body = await fallback.open(record, range, req.log);
      if (!body) throw await blobMissing(req, record, err);
    }
    // The outcome is counted as the last byte passes, before the client can have it all, so a
    // scrape right after a download always includes it.
    const expected = range ? range.end - range.start + 1 : size;
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
        if (!counted) count();
        done();
      },
    });
    // A client that goes away mid-download just ends the pipeline; nothing to clean up.
    await pipeline(body, meter, res).catch((err) => {
      if (!res.destroyed) req.log.error({ err, fileId: record.id }, 'download stream failed');
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
