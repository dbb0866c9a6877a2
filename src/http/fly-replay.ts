import { type Request, type RequestHandler, type Response, Router } from 'express';
import type { Files } from '../files/files';
import { MACHINE_HEADER, type Placement } from '../catalog/placement';
import { FileElsewhere, UploadElsewhere } from '../errors';
import { lingerAfterAnswer } from './linger';

/** Fly's proxy replays requests under 1 MB only; a body this size or larger can't be replayed. */
const FLY_REPLAY_MAX_BODY = 1_000_000;

/**
 * For files on another Machine's volume: answers with `fly-replay: instance=<id>` so Fly's proxy
 * replays the request on the Machine that holds the blob, instead of this one answering 404.
 * Only for requests Fly can replay (under 1 MB: downloads and deletes, never uploads). Fly's
 * proxy acts on the header and discards the response, so it has no body; the status is 409
 * (the file is not here), which a client only sees when no Fly proxy is in front. A request
 * that already is a replay (`fly-replay-src`) is never replayed again, so records pointing at a
 * Machine that no longer holds the file can't loop; it gets 409 `file_elsewhere` (the blob is
 * not missing, and must not be marked so by a Machine that never had it).
 */
export function replayToOwningMachine(
  deps: { placement: Placement; files: Files },
  /** Which file the request is about; by default the caller's file named in the path. A download link names its own. */
  fileOf: (req: Request, res: Response) => { owner: string; id: unknown } = (req) => ({ owner: req.owner, id: req.params.id }),
): RequestHandler {
  return async (req, res, next) => {
    const { owner, id } = fileOf(req, res);
    if (typeof id !== 'string') return next();
    const record = await deps.files.get(owner, id);
    if (!record?.machine_id || record.machine_id === deps.placement.machineId) return next();
    if (req.headers['fly-replay-src']) {
      throw new FileElsewhere(record.machine_id, record.region, `The file is on machine ${record.machine_id} (${record.region ?? 'unknown region'}), which this request was not replayed to.`);
    }
    req.log.info({ fileId: id, machineId: record.machine_id, region: record.region }, 'replaying on the machine that holds the file');
    res.status(409).set('fly-replay', `instance=${record.machine_id}`).end();
  };
}

/**
 * For a resumable (tus) upload, whose bytes so far are on the volume of the Machine that created
 * it: every answer about it there names that Machine (`Stowage-Machine`), so clients send their
 * chunks with `fly-force-instance-id` and Fly's proxy routes them straight there. A request that
 * lands on another Machine anyway is replayed there when Fly can replay it (HEAD, DELETE, a PATCH
 * under 1 MB); a larger PATCH is refused with 421 `upload_elsewhere` before a byte of its body is
 * read, so the upload loses nothing and the client learns where to send it.
 */
function routeTusToOwningMachine(deps: { placement: Placement; files: Files }): RequestHandler {
  const here = deps.placement.machineId;
  return async (req, res, next) => {
    const id = String(req.params.id);
    const record = await deps.files.get(req.owner, id);
    // Not the caller's upload, not on a Machine's volume, or finished (the catalog answers for
    // a stored file): the tus route answers.
    if (!record?.machine_id || record.status !== 'pending') return next();
    res.setHeader(MACHINE_HEADER, record.machine_id);
    if (record.machine_id === here) return next();
    const length = Number(req.headers['content-length'] ?? (req.headers['transfer-encoding'] ? Infinity : 0));
    const replayable = req.method !== 'PATCH' || length < FLY_REPLAY_MAX_BODY;
    if (replayable && !req.headers['fly-replay-src']) {
      req.log.info({ fileId: id, machineId: record.machine_id, region: record.region }, 'replaying on the machine that holds the upload');
      res.status(409).set('fly-replay', `instance=${record.machine_id}`).end();
      return;
    }
    if (req.method !== 'PATCH') {
      throw new FileElsewhere(record.machine_id, record.region, `The upload is on machine ${record.machine_id} (${record.region ?? 'unknown region'}), which this request was not replayed to.`);
    }
    // The body is not read: the connection can't carry another request after this answer.
    res.setHeader('Connection', 'close');
    lingerAfterAnswer(res);
    throw new UploadElsewhere(record.machine_id, record.region);
  };
}

/** The routes that replay: content reads and deletes of one file, and requests about a resumable upload. */
export function flyReplayRouter(deps: { placement: Placement; files: Files }): Router {
  const replay = replayToOwningMachine(deps);
  const tus = routeTusToOwningMachine(deps);
  const router = Router();
  router.get('/files/:id/content', replay);
  router.head('/files/:id/content', replay);
  router.delete('/files/:id', replay);
  // A new upload's bytes go to the volume of the Machine that creates it.
  router.post('/tus', (_req, res, next) => {
    res.setHeader(MACHINE_HEADER, deps.placement.machineId);
    next();
  });
  router.head('/tus/:id', tus);
  router.patch('/tus/:id', tus);
  router.delete('/tus/:id', tus);
  return router;
}
