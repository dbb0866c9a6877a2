import type { Logger } from 'pino';
import type { Config } from '../config';
import { startServer } from '../http/server';
import { stopOnSignal } from './shutdown';

/** Runs the HTTP server until SIGTERM/SIGINT, then shuts down gracefully and exits 0. */
export async function serve(config: Config, log: Logger): Promise<void> {
  const server = await startServer(config, log);
  stopOnSignal(log, () => server.stop());
}
