import fs from 'node:fs';
import path from 'node:path';
import { CONFIG_VARIABLES, loadConfig } from '../../src/config';
import { ROOT } from '../helpers/service';
import { composeValidator, containerEnvOf, readCompose } from './compose-file';

/**
 * docker-compose.nginx.yml (stowage on a volume behind the official nginx image, downloads
 * offloaded), read as Compose reads it, and deploy/nginx/stowage.conf matched against it. The
 * config itself runs in front of the built server in nginx-offload.test.ts.
 */

const { document, compose } = readCompose('docker-compose.nginx.yml');
const { services } = compose;
const conf = fs.readFileSync(path.join(ROOT, 'deploy/nginx/stowage.conf'), 'utf8');

/** What the image's ENV instructions set (the Dockerfile's runtime stage). */
function imageEnv(): Record<string, string> {
  const dockerfile = fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const envLines = dockerfile.split('\n').filter((line) => line.startsWith('ENV '));
  return Object.fromEntries(envLines.flatMap((line) => [...line.matchAll(/([A-Z_][A-Z0-9_]*)=(\S+)/g)].map((m) => [m[1], m[2]])));
}

/** stowage's configuration in its container: the image's variables, then the service's. */
const stowageConfig = () => loadConfig({ ...imageEnv(), ...containerEnvOf(services.stowage, { SECRET_KEY: 'x'.repeat(64) }) }, '/app');

/** Where a named volume is mounted in a service, and whether read-only. */
function mount(service: string, volume: string): { at: string; readOnly: boolean } {
  const entry = services[service].volumes!.find((v) => v.startsWith(`${volume}:`))!;
  const [, at, mode] = entry.split(':');
  return { at, readOnly: mode === 'ro' };
}

it('parses without errors and is valid against the Compose Specification schema', () => {
  expect(document.errors).toEqual([]);
  expect(document.warnings).toEqual([]);
  expect(Object.keys(services).sort()).toEqual(['nginx', 'stowage']);
  const validate = composeValidator();
  expect(validate(compose) ? [] : validate.errors).toEqual([]);
});

it('runs stowage on the volume with DOWNLOAD_OFFLOAD=nginx, trusting nginx as its one proxy, and refuses to start without SECRET_KEY', () => {
  expect(Object.keys(services.stowage.environment!).filter((name) => !CONFIG_VARIABLES.includes(name))).toEqual([]);
  const config = stowageConfig();
  expect(config.storage.driver).toBe('volume');
  expect(config.downloads.offload).toEqual({ header: 'X-Accel-Redirect', prefix: '/_stowage_files' });
  expect(config.trustProxy).toBe(1);
  // The catalog is on the volume too, beside the files.
  const data = mount('stowage', 'stowage-data');
  expect([path.dirname(config.storage.path), path.dirname(config.databasePath)]).toEqual([data.at, data.at]);
  expect(data.readOnly).toBe(false);
  expect(() => containerEnvOf(services.stowage, {})).toThrow(/SECRET_KEY.*openssl rand -base64 48/);
});

it("gives nginx the config, and the volume read-only where the internal location's alias finds stowage's files", () => {
  const config = stowageConfig();
  expect(services.nginx.volumes).toContain('./deploy/nginx/stowage.conf:/etc/nginx/conf.d/default.conf:ro');
  expect(services.nginx.image).toMatch(/^nginx:\d+\.\d+$/);
  const location = conf.match(/location (\S+) \{\s*internal;\s*alias (\S+);/);
  expect(location).not.toBeNull();
  const [, prefix, alias] = location!;
  expect(prefix).toBe(`${config.downloads.offload!.prefix}/`);
  const inStowage = mount('stowage', 'stowage-data');
  const inNginx = mount('nginx', 'stowage-data');
  expect(inNginx.readOnly).toBe(true);
  expect(path.posix.relative(inNginx.at, alias)).toBe(path.posix.relative(inStowage.at, config.storage.path));
  // At the server's level: after the redirect nginx applies it before the location's, and off
  // there would keep TCP_CORK off (offloaded downloads then ran at 0.70 of nginx's own speed).
  const serverLevel = conf.slice(conf.indexOf('server {'), conf.indexOf('location '));
  expect(serverLevel).toMatch(/^\s*tcp_nopush on;/m);
});

it("proxies to the stowage service's port, closing idle connections before stowage does, and only nginx is published", () => {
  const upstream = conf.match(/upstream stowage \{\s*server ([\w.-]+):(\d+);[^}]*keepalive_timeout (\d+)s;/);
  expect(upstream?.slice(1, 3)).toEqual(['stowage', String(stowageConfig().port)]);
  // Else nginx could send an upload on a connection stowage is closing, and answer 502.
  expect(Number(upstream![3]) * 1000).toBeLessThan(stowageConfig().http.keepAliveTimeoutMs);
  expect(services.stowage.ports).toBeUndefined();
  expect(services.nginx.ports).toEqual(['3000:80']);
  expect(conf).toMatch(/^\s*listen 80;/m);
  expect(Object.keys(services.nginx.depends_on!)).toEqual(['stowage']);
});
