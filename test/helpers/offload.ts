import path from 'node:path';
import { createKeyWithCli, freePort, runService, type CliKey, type ServiceProcess } from './service';

/** The browser origin the offload tests' stowage allows (CORS headers must survive the proxy). */
export const OFFLOAD_ORIGIN = 'https://app.example';

export interface OffloadingService {
  svc: ServiceProcess;
  /** stowage's own address, behind the proxy. */
  url: string;
  port: number;
  filesDir: string;
  alice: CliKey;
  bob: CliKey;
}

/**
 * The built `serve` on a volume under `dir` with DOWNLOAD_OFFLOAD=`mode`, trusting one proxy in
 * front, with API keys for two owners made by the CLI.
 */
export async function startOffloadingService(dir: string, mode: 'nginx' | 'sendfile'): Promise<OffloadingService> {
  const filesDir = path.join(dir, 'files');
  const port = await freePort();
  const env = {
    PORT: String(port),
    STORAGE: 'volume',
    STORAGE_PATH: filesDir,
    DATABASE_PATH: path.join(dir, 'stowage.db'),
    DOWNLOAD_OFFLOAD: mode,
    TRUST_PROXY: '1',
    CORS_ORIGINS: OFFLOAD_ORIGIN,
    SECRET_KEY: `${mode}-offload-test-secret-0123456789abcdef`,
  };
  const [alice, bob] = await Promise.all([createKeyWithCli(env, 'alice'), createKeyWithCli(env, 'bob')]);
  const svc = runService(['serve'], { env });
  await svc.waitFor((l) => l.msg === 'listening');
  return { svc, url: `http://127.0.0.1:${port}`, port, filesDir, alice, bob };
}
