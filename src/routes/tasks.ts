import { Router, type Request, type Response } from 'express';
import type { Files } from '../files/files';
import { NotFound } from '../errors';
import { pageQuery } from '../http/paging';
import type { TaskQueue } from '../tasks/queue';
import { FINISHED, type Task, type Waiting } from '../tasks/task';
import { WEBHOOK_TASK } from '../webhooks/events';
import { presentFile } from './present';

/** Cross-process changes (a worker in another process) are picked up this often. */
const EVENTS_POLL_MS = 500;
/** A comment line this often keeps proxies (Heroku's 55 s idle window) from closing the stream. */
const EVENTS_KEEPALIVE_MS = 15_000;

/** `waiting`: why a task that is due to run does not (`queue.waiting`); omitted when it is not stuck. */
export async function presentTask(task: Task, files: Pick<Files, 'getMany'>, waiting?: Waiting) {
  const outputs = await files.getMany(task.owner, task.outputFileIds);
  return {
    id: task.id,
    kind: task.kind,
    status: task.status,
    ...(waiting !== undefined && { waiting }),
    progress: task.progress,
    log: task.log,
    attempts: task.attempts,
    maxAttempts: task.maxAttempts,
    error: task.errorCode && task.status !== 'succeeded' ? { code: task.errorCode, message: task.errorMessage } : null,
    outputs: task.outputFileIds.flatMap((id) => {
      const f = outputs.find((o) => o.id === id);
      if (!f) return [];
      // The file's record in brief: the fields of presentFile a task's outputs show.
      const { id: fileId, name, contentType, size, sha256, status, links } = presentFile(f);
      return [{ id: fileId, name, contentType, size, sha256, status, links }];
    }),
    createdAt: task.createdAt,
    updatedAt: task.updatedAt,
    finishedAt: task.finishedAt,
    links: { self: `/v1/tasks/${task.id}`, events: `/v1/tasks/${task.id}/events` },
  };
}

/** Tasks as the API presents them, each with why it waits when no worker can run it. */
export async function presentTasks(tasks: Task[], deps: { queue: TaskQueue; files: Pick<Files, 'getMany'> }) {
  const waiting = await deps.queue.waiting(tasks);
  return Promise.all(tasks.map((t) => presentTask(t, deps.files, waiting.get(t.id))));
}

export function tasksRouter(deps: { queue: TaskQueue; files: Files }): Router {
  const { queue, files } = deps;
  const router = Router();
  const present = async (task: Task) => (await presentTasks([task], deps))[0];

  const ownTask = async (req: Request) => {
    const task = await queue.get(req.owner, String(req.params.id));
    if (!task) throw new NotFound('No task with that id.');
    return task;
  };

  router.get('/tasks', async (req, res) => {
    // Deliveries have their own list (GET /v1/webhooks/deliveries).
    const page = await queue.list(req.owner, { ...pageQuery(req.query), excludeKinds: [WEBHOOK_TASK] });
    res.json({ tasks: await presentTasks(page.tasks, deps), nextCursor: page.nextCursor ?? null });
  });

  router.get('/tasks/:id', async (req, res) => {
    res.json(await present(await ownTask(req)));
  });

  router.delete('/tasks/:id', async (req, res) => {
    await ownTask(req);
    res.json(await present(await queue.cancel(req.owner, String(req.params.id))));
  });

  /**
   * Server-sent events: `progress` with the task whenever it changes, then `done` with its final
   * state, after which the stream ends. A client that connects after the end gets `done` at once.
   */
  router.get('/tasks/:id/events', async (req: Request, res: Response) => {
    let task = await ownTask(req);
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    let lastSent = '';
    let sending = false;
    let again = false;
    const send = async () => {
      if (sending) return void (again = true);
      sending = true;
      try {
        do {
          again = false;
          task = (await queue.get(req.owner, task.id)) ?? task;
          const finished = FINISHED.includes(task.status);
          const [waiting] = (await queue.waiting([task])).values();
          // A worker starting or going away changes `waiting` alone: that is news too.
          const stamp = `${task.updatedAt}|${task.status}|${task.progress}|${waiting}`;
          if (stamp !== lastSent || finished) {
            lastSent = stamp;
            res.write(`event: ${finished ? 'done' : 'progress'}\ndata: ${JSON.stringify(await presentTask(task, files, waiting))}\n\n`);
          }
          if (finished) return stop();
        } while (again && !res.writableEnded);
      } catch (err) {
        req.log.error({ err, taskId: task.id }, 'task events failed');
        stop();
      } finally {
        sending = false;
      }
    };
    const onChanged = (id: string) => {
      if (id === task.id) void send();
    };
    const poll = setInterval(() => void send(), EVENTS_POLL_MS);
    const keepalive = setInterval(() => res.write(': keepalive\n\n'), EVENTS_KEEPALIVE_MS);
    function stop() {
      clearInterval(poll);
      clearInterval(keepalive);
      queue.events.off('changed', onChanged);
      if (!res.writableEnded) res.end();
    }
    queue.events.on('changed', onChanged);
    req.on('close', stop);
    await send();
  });

  return router;
}
