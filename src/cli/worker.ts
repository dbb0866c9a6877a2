import type { Logger } from 'pino';
import type { Config } from '../config';
import { createPeriodicDoctor, createWorker, openResources, startExpiry, startSweeper } from '../resources';
import { stopOnSignal } from './shutdown';

/**
 * `stowage worker`: runs tasks (WORKER_CONCURRENCY at a time) without serving HTTP, for a
 * separate worker process (Procfile `worker:`; set WORKERS=0 on the web process), the leftover
 * sweep, the expiry sweep (SWEEP_INTERVAL), and the periodic doctor when DOCTOR_INTERVAL is set. SIGTERM lets running tasks finish within the grace
 * period and hands the rest back to the queue.
 */
export async function runWorker(config: Config, log: Logger): Promise<void> {
  const resources = await openResources(config, log);
  const worker = createWorker(resources, config, log, config.tasks.workerConcurrency)!;
  const doctor = createPeriodicDoctor(resources, config, log);
  // What a killed web or worker process left (its source copies, its uploads) goes at start-up
  // and every minute, as in `serve`.
  const sweeper = startSweeper(resources, config, log);
  // Files past their expiresAt go every SWEEP_INTERVAL.
  const expiry = startExpiry(resources, config, log);
  worker.start();
  doctor?.start();
  stopOnSignal(log, async () => {
    await Promise.all([worker.stop(config.shutdownGraceMs), doctor?.stop(), sweeper.stop(), expiry.stop()]);
    await resources.close();
  });
}
