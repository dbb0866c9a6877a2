import express, { Router } from 'express';
import type { Config } from '../config';
import type { Files } from '../files/files';
import { BadRequest, LogoRejected, NotFound, UnsupportedMediaType } from '../errors';
import { LOGO_MAX_BYTES } from '../reports/logo';
import { parseReportRequest } from '../reports/spec';
import type { TaskQueue } from '../tasks/queue';
import type { Task } from '../tasks/task';
import { REPORT_TASK } from '../tasks/report-task';
import { waitForTask } from '../tasks/wait';
import { presentTasks } from './tasks';

/** The longest a client may ask to wait for a report, under Heroku's 30 s router timeout. */
const MAX_WAIT_S = 25;

type ReportDeps = { reports: Config['reports']; tasks: Config['tasks']; queue: TaskQueue; files: Files };

/**
 * Validates a report request (the API's JSON or the page's form), checks its source and queues
 * it. A source on a Fly Machine's volume is readable only there, so the task is pinned to that
 * Machine's workers.
 */
export async function queueReport(deps: ReportDeps, owner: string, body: unknown): Promise<Task> {
  const request = parseReportRequest(body);
  let machineId: string | null = null;
  const sources = request.kind === 'source' ? [{ at: 'source', ref: request.source }] : [];
  if (request.kind === 'sheets') request.sheets.forEach((s, i) => 'source' in s && sources.push({ at: `sheets[${i}].source`, ref: s.source }));
  for (const { at, ref } of sources) {
    const source = await deps.files.get(owner, ref.fileId);
    if (!source) throw new NotFound(`No file with that id (${at}.fileId).`, 'source_not_found');
    machineId ??= source.machine_id;
  }
  const logoId = request.options.logo?.fileId;
  if (logoId) {
    const logo = await deps.files.get(owner, logoId);
    if (!logo) throw new NotFound('No file with that id (options.logo.fileId).', 'logo_not_found');
    if (logo.size > LOGO_MAX_BYTES) throw new LogoRejected(`The logo is larger than ${LOGO_MAX_BYTES} bytes.`);
    machineId ??= logo.machine_id;
  }
  return deps.queue.enqueue(REPORT_TASK, owner, request, { maxAttempts: deps.tasks.maxAttempts, machineId });
}

/**
 * `POST /v1/reports`: validates the request, queues a `report` task and answers 202 with its
 * `Location`. With `?wait=SECONDS` it answers 201 with the finished task (and its outputs) if the
 * report is built in time, else the same 202: at once when no worker can run it (`waiting`).
 */
export function reportsRouter(deps: ReportDeps): Router {
  const { queue } = deps;
  const router = Router();
  router.post('/reports', express.json({ limit: deps.reports.maxBodyBytes }), async (req, res) => {
    if (!req.is('application/json')) throw new UnsupportedMediaType('Send the report request as application/json.', 'json_required');
    let waitS = 0;
    if (req.query.wait !== undefined) {
      waitS = Number(req.query.wait);
      if (!Number.isFinite(waitS) || waitS < 0 || waitS > MAX_WAIT_S) {
        throw new BadRequest(`wait must be a number of seconds from 0 to ${MAX_WAIT_S}.`, 'invalid_wait');
      }
    }
    const queued = await queueReport(deps, req.owner, req.body);
    const task = waitS > 0 ? ((await waitForTask(queue, req.owner, queued.id, waitS * 1000)) ?? queued) : queued;
    res
      .status(task.status === 'succeeded' ? 201 : 202)
      .location(`/v1/tasks/${task.id}`)
      .json((await presentTasks([task], deps))[0]);
  });
  return router;
}
