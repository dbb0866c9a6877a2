import type { Logger } from 'pino';

/** On SIGTERM or SIGINT, runs `stop` (a graceful shutdown) and exits 0, or 1 if it failed. */
export function stopOnSignal(log: Logger, stop: () => Promise<unknown>): void {
  const onSignal = (signal: NodeJS.Signals) => {
    log.info({ signal }, 'signal received');
    stop().then(
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
