import { type Request, type RequestHandler, type Response, Router } from 'express';
import type { Files } from '../files/files';
import type { Placement } from '../catalog/placement';
import { FileElsewhere } from '../errors';

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

/** The routes that replay: content reads and deletes of one file. */
export function flyReplayRouter(deps: { placement: Placement; files: Files }): Router {
  const replay = replayToOwningMachine(deps);
  const router = Router();
  router.get('/files/:id/content', replay);
  router.head('/files/:id/content', replay);
  router.delete('/files/:id', replay);
  return router;
}
