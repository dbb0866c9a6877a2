import type { TaskQueue } from './queue';
import { FINISHED, type Task } from './task';

/** Changes made by a worker in another process are seen this often. */
const POLL_MS = 200;

/**
 * Resolves with the task once it has finished, or with its latest state after `timeoutMs`, or at
 * once while no worker can run it (it carries `waiting` then: waiting longer would change
 * nothing). Wakes at once on in-process changes, and polls for ones made by other processes.
 */
export async function waitForTask(queue: TaskQueue, owner: string, id: string, timeoutMs: number): Promise<Task | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const task = await queue.get(owner, id);
    if (!task || FINISHED.includes(task.status) || Date.now() >= deadline) return task;
    if ((await queue.waiting([task])).has(task.id)) return task;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        queue.events.off('changed', onChanged);
        resolve();
      };
      const onChanged = (changed: string) => changed === id && done();
      const timer = setTimeout(done, Math.min(POLL_MS, Math.max(0, deadline - Date.now())));
      queue.events.on('changed', onChanged);
    });
  }
}
