import type { Logger } from 'pino';
import type { Config } from '../config';
import { createWorker, openResources } from '../server';

/**
 * `stowage worker`: runs tasks (WORKER_CONCURRENCY at a time) without serving HTTP, for a
 * separate worker process (Procfile `worker:`; set WORKERS=0 on the web process). SIGTERM lets
 * running tasks finish within the grace period and hands the rest back to the queue.
 */
export async function runWorker(config: Config, log: Logger): Promise<void> {
  const resources = await openResources(config, log);
  const worker = createWorker(resources, config, log, config.tasks.workerConcurrency)!;
  worker.start();
  const onSignal = (signal: NodeJS.Signals) => {
    log.info({ signal }, 'signal received');
    worker
      .stop(config.shutdownGraceMs)
      .then(() => resources.store.close())
      .then(() => resources.db.destroy())
      .then(
        () => process.exit(0),
        (err) => {
          log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
}
