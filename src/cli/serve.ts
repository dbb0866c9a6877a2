import type { Logger } from 'pino';
import type { Config } from '../config';
import { startServer } from '../server';

/** Runs the HTTP server until SIGTERM/SIGINT, then shuts down gracefully and exits 0. */
export async function serve(config: Config, log: Logger): Promise<void> {
  const server = await startServer(config, log);
  const onSignal = (signal: NodeJS.Signals) => {
    log.info({ signal }, 'signal received');
    server.stop().then(
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
