import type { Logger } from 'pino';
import type { Config } from '../config';
import { offloadWarning } from '../config/offload';
import { startServer } from '../http/server';
import { listeningLine, wantsListeningLine } from './listening-line';
import { stopOnSignal } from './shutdown';

/** Runs the HTTP server until SIGTERM/SIGINT, then shuts down gracefully and exits 0. */
export async function serve(config: Config, log: Logger): Promise<void> {
  const warning = offloadWarning(config.downloads.offload, config.storage.driver);
  if (warning) log.warn({ event: 'config.offload' }, warning);
  const server = await startServer(config, log);
  // Beside the JSON "listening" log line on stdout, one line for a person, on stderr.
  if (wantsListeningLine(config)) process.stderr.write(`${listeningLine(config, server.port)}\n`);
  stopOnSignal(log, () => server.stop());
}
