/** What other processes sharing the queue should hear about at once. */
export type QueueSignal = { type: 'enqueued'; kind: string } | { type: 'cancelled'; id: string };

export interface Subscription {
  close(): Promise<void>;
}

/**
 * Carries queue signals between processes. Best effort: a worker that misses one still finds
 * the task at its next poll, so a lost signal costs latency, never a task.
 */
export interface QueueWakeups {
  publish(signal: QueueSignal): Promise<void>;
  listen(onSignal: (signal: QueueSignal) => void): Promise<Subscription>;
}
