import path from 'node:path';
import { CONFIG_VARIABLES, loadConfig } from '../../src/config';
import { cliCommands, commandOf } from './cli-commands';
import { composeValidator as validator, containerEnvOf, readCompose } from './compose-file';

/**
 * docker-compose.yml as Compose reads it (see compose-file.ts), its settings checked against
 * stowage's config and each other.
 */

const { document, compose } = readCompose('docker-compose.yml');
const { services } = compose;
const STOWAGE_SERVICES = ['stowage', 'worker'];

/** A stowage service's environment as its container gets it, given the shell's. */
const containerEnv = (service: string, shell: Record<string, string | undefined>) => containerEnvOf(services[service], shell);

it('parses as YAML without errors or warnings, with its anchors and merge keys resolved', () => {
  expect(document.errors).toEqual([]);
  expect(document.warnings).toEqual([]);
  expect(Object.keys(services).sort()).toEqual(['postgres', 's3', 'stowage', 'worker']);
  // The shared environment reaches both services; the web one adds WORKERS=0 to it.
  expect(services.worker.environment).toMatchObject({ STORAGE: 's3', S3_ENDPOINT: 'http://s3:7070' });
  expect(services.stowage.environment).toEqual({ ...services.worker.environment, WORKERS: '0' });
  expect(services.stowage.depends_on).toEqual(services.worker.depends_on);
});

it('is valid against the Compose Specification schema (and the schema does catch a misspelt key)', () => {
  const validate = validator();
  expect(validate(compose) ? [] : validate.errors).toEqual([]);
  const misspelt = structuredClone(compose) as unknown as { services: Record<string, Record<string, unknown>> };
  misspelt.services.worker.enviroment = misspelt.services.worker.environment;
  expect(validate(misspelt)).toBe(false);
});

it('sets only variables stowage reads, and they make a valid configuration for the s3 and postgres services', () => {
  for (const service of STOWAGE_SERVICES) {
    expect(Object.keys(services[service].environment!).filter((name) => !CONFIG_VARIABLES.includes(name))).toEqual([]);
  }
  const env = containerEnv('stowage', { SECRET_KEY: 'x'.repeat(64) });
  const config = loadConfig(env, '/tmp');
  expect(config.storage.driver).toBe('s3');
  expect(config.storage.s3).toMatchObject({ bucket: 'stowage', endpoint: 'http://s3:7070', forcePathStyle: true, region: 'us-east-1' });
  expect(config.database.kind).toBe('postgres');
  expect(config.downloads.mode).toBe('proxy');
});

it('refuses to start without SECRET_KEY, saying how to make one', () => {
  expect(services.stowage.environment!.SECRET_KEY).toMatch(/^\$\{SECRET_KEY:\?.+\}$/);
  for (const service of STOWAGE_SERVICES) {
    expect(() => containerEnv(service, {})).toThrow(/SECRET_KEY.*openssl rand -base64 48/);
    expect(() => containerEnv(service, { SECRET_KEY: '' })).toThrow(/SECRET_KEY/);
  }
});

it("points stowage at the s3 service's port, credentials and bucket directory, and at postgres's database", () => {
  const env = containerEnv('stowage', { SECRET_KEY: 'x'.repeat(64) });
  const s3 = services.s3;
  const endpoint = new URL(env.S3_ENDPOINT);
  expect(endpoint.hostname).toBe('s3');
  expect(s3.environment!.VGW_PORT).toBe(`:${endpoint.port}`);
  expect(s3.healthcheck!.test).toContain(`http://127.0.0.1:${endpoint.port}${s3.environment!.VGW_HEALTH}`);
  expect([env.AWS_ACCESS_KEY_ID, env.AWS_SECRET_ACCESS_KEY]).toEqual([s3.environment!.ROOT_ACCESS_KEY, s3.environment!.ROOT_SECRET_KEY]);
  // The posix backend's buckets are the directories under its root: the volume is the bucket.
  const [backend, root] = s3.command!;
  expect(backend).toBe('posix');
  expect(s3.volumes).toContain(`s3-data:${path.posix.join(root, env.S3_BUCKET)}`);

  const db = new URL(env.DATABASE_URL);
  const pg = services.postgres.environment!;
  expect([db.hostname, db.port, db.username, decodeURIComponent(db.password), db.pathname]).toEqual([
    'postgres',
    '5432',
    pg.POSTGRES_USER,
    pg.POSTGRES_PASSWORD,
    `/${pg.POSTGRES_DB}`,
  ]);
});

it('starts each service after what it depends on is healthy, and names only services and volumes it defines', () => {
  for (const service of Object.values(services)) {
    for (const [target, { condition }] of Object.entries(service.depends_on ?? {})) {
      expect(Object.keys(services)).toContain(target);
      if (condition === 'service_healthy') expect(services[target].healthcheck).toBeDefined();
    }
    for (const volume of service.volumes ?? []) expect(Object.keys(compose.volumes ?? {})).toContain(volume.split(':')[0]);
  }
});

it('pins every image to a version tag, never latest', () => {
  const images = Object.values(services).flatMap((s) => (s.image ? [s.image] : []));
  expect(images.length).toBeGreaterThan(0);
  for (const image of images) expect(image).toMatch(/^[a-z0-9./-]+:(?!latest$)v?\d[\w.-]*$/);
});

it("runs commands the CLI has: the image's default (serve) for stowage, worker for the worker", async () => {
  expect(services.stowage.command).toBeUndefined();
  expect(commandOf(services.worker.command!)).toBe('worker');
  expect(await cliCommands()).toContain('worker');
});
