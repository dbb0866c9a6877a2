import path from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../errors';

/**
 * DOWNLOAD_OFFLOAD: a reverse proxy in front streams the bytes of a volume file, stowage only
 * authorises the download and sets its headers. `nginx` answers `X-Accel-Redirect: <prefix>/<key>`
 * (a URI of an `internal` location); `sendfile` answers `X-Sendfile: <prefix>/<key>` (a path on
 * the proxy's filesystem: Apache's mod_xsendfile, Caddy, lighttpd).
 */
export interface OffloadSettings {
  header: 'X-Accel-Redirect' | 'X-Sendfile';
  /** What the file's store key is appended to, with a `/` between; never ends in `/`. */
  prefix: string;
}

export const DEFAULT_NGINX_PREFIX = '/_stowage_files';

/** A URI path nginx can match a location against: no encoding needed, no dot segments. */
const URI_PATH = /^(\/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)+$/;

export function offloadFields() {
  return {
    DOWNLOAD_OFFLOAD: z.enum(['off', 'nginx', 'sendfile'], { message: 'must be off, nginx (X-Accel-Redirect) or sendfile (X-Sendfile)' }).default('off'),
    DOWNLOAD_OFFLOAD_PREFIX: z.string().min(1).optional(),
  };
}

type Parsed = z.output<z.ZodObject<ReturnType<typeof offloadFields>>>;

/** `volumePath` is the volume store's directory as stowage sees it: the default root for `sendfile`. */
export function readOffload(e: Parsed, volumePath: string): OffloadSettings | undefined {
  const prefix = e.DOWNLOAD_OFFLOAD_PREFIX?.replace(/(.)\/+$/, '$1');
  switch (e.DOWNLOAD_OFFLOAD) {
    case 'off':
      if (prefix !== undefined) throw new ConfigError(['DOWNLOAD_OFFLOAD_PREFIX: has no effect unless DOWNLOAD_OFFLOAD is nginx or sendfile']);
      return undefined;
    case 'nginx':
      if (prefix !== undefined && !URI_PATH.test(prefix)) {
        throw new ConfigError([`DOWNLOAD_OFFLOAD_PREFIX: ${JSON.stringify(prefix)} must be the URI path of nginx's internal location, such as ${DEFAULT_NGINX_PREFIX}`]);
      }
      return { header: 'X-Accel-Redirect', prefix: prefix ?? DEFAULT_NGINX_PREFIX };
    case 'sendfile':
      if (prefix !== undefined && !path.isAbsolute(prefix)) {
        throw new ConfigError([`DOWNLOAD_OFFLOAD_PREFIX: ${JSON.stringify(prefix)} must be an absolute path (the volume's directory as the proxy sees it)`]);
      }
      return { header: 'X-Sendfile', prefix: prefix === '/' ? '' : (prefix ?? volumePath) };
  }
}

/**
 * Said once at start-up when offload is on but new files go to a store the proxy can't read
 * (only files on the volume are handed over; the others still stream through stowage).
 */
export function offloadWarning(offload: OffloadSettings | undefined, driver: string): string | undefined {
  if (!offload || driver === 'volume') return undefined;
  return `DOWNLOAD_OFFLOAD is set, but new files go to STORAGE=${driver}, which the proxy can't read: they stream through stowage (only files on the volume, STORAGE_PATH, are handed to the proxy)`;
}
