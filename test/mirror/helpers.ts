import { GetObjectCommand } from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import type { TaskHandler } from '../../src/tasks/worker';
import { Worker } from '../../src/tasks/worker';
import type { Task } from '../../src/tasks/task';
import type { TestApp } from '../helpers/app';
import type { S3TestServer } from '../helpers/s3server';
import { readAll } from '../helpers/streams';

/** The app's own task handlers (the mirror one) in an in-process worker polling every 20 ms. */
export function startWorker(t: TestApp, options: { retryBaseMs?: number; extra?: Record<string, TaskHandler> } = {}): Worker {
  const worker = new Worker({
    queue: t.queue,
    files: t.files,
    log: t.logs.log,
    handlers: { ...t.resources.handlers, ...options.extra },
    concurrency: 1,
    leaseMs: 5000,
    pollMs: 20,
    retryBaseMs: options.retryBaseMs ?? 5,
  });
  worker.start();
  return worker;
}

/** The newest mirror task queued for a file, read from the tasks table. */
export async function mirrorTaskOf(t: TestApp, fileId: string): Promise<Task> {
  const rows = await t.db.selectFrom('tasks').select(['id', 'owner', 'payload']).where('kind', '=', 'mirror').orderBy('created_at', 'desc').execute();
  const row = rows.find((r) => (JSON.parse(r.payload) as { fileId: string }).fileId === fileId);
  if (!row) throw new Error(`no mirror task for ${fileId}`);
  return (await t.queue.get(row.owner, row.id))!;
}

/** Resolves with the task once it reaches `status` (on the queue's change events, no polling). */
export function taskReaches(t: TestApp, task: Task, status: string): Promise<Task> {
  return new Promise((resolve) => {
    const check = async () => {
      const now = await t.queue.get(task.owner, task.id);
      if (now?.status === status) {
        t.queue.events.off('changed', onChange);
        resolve(now);
      }
    };
    const onChange = (id: string) => id === task.id && void check();
    t.queue.events.on('changed', onChange);
    void check();
  });
}

/** An object's bytes read straight from the bucket, bypassing stowage. */
export async function objectBytes(server: S3TestServer, bucket: string, key: string): Promise<Buffer> {
  const res = await server.client().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return readAll(res.Body as Readable);
}
