import type { Logger } from 'pino';

export interface Periodic {
  /** Stops the timer and waits for a run in progress. */
  stop(): Promise<void>;
}

/**
 * Runs `work` now (unless `immediately` is false) and every `intervalMs` in the background, never
 * two runs at once. A failed run is logged and the next one tries again; the timer never keeps
 * the process alive on its own.
 */
export function every(intervalMs: number, work: () => Promise<unknown>, log: Logger, what: string, { immediately = true } = {}): Periodic {
  let running: Promise<void> | undefined;
  const run = () => {
    running ??= work()
      .then(
        () => undefined,
        (err: unknown) => log.error({ err }, `${what} failed`),
      )
      .finally(() => {
        running = undefined;
      });
  };
  if (immediately) run();
  const timer = setInterval(run, intervalMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
