import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'smol-toml';
import { CONFIG_VARIABLES, loadConfig } from '../../src/config';
import { ROOT } from '../helpers/service';
import { cliCommands, commandOf } from './cli-commands';

/**
 * fly.toml as flyctl reads it (no Fly here): a real TOML parser, its settings checked against
 * stowage's config, its commands against the CLI, and its app name against the docs' steps.
 */

interface FlyToml {
  app: string;
  processes: Record<string, string>;
  deploy: { release_command: string };
  env: Record<string, string>;
  http_service: { internal_port: number; processes: string[] };
}

const fly = parse(fs.readFileSync(path.join(ROOT, 'fly.toml'), 'utf8')) as unknown as FlyToml;

it('sets only variables stowage reads, and with what `fly storage create` and the docs add they make a valid configuration', () => {
  expect(Object.keys(fly.env).filter((name) => !CONFIG_VARIABLES.includes(name))).toEqual([]);
  const config = loadConfig(
    {
      ...fly.env,
      // Set by `fly storage create`, `fly secrets set` and Fly itself on every Machine.
      BUCKET_NAME: 'stowage-files',
      AWS_ENDPOINT_URL_S3: 'https://fly.storage.tigris.dev',
      AWS_REGION: 'auto',
      AWS_ACCESS_KEY_ID: 'tid_x',
      AWS_SECRET_ACCESS_KEY: 'tsec_x',
      DATABASE_URL: 'postgres://u:p@db.internal:5432/stowage?sslmode=require',
      SECRET_KEY: 'x'.repeat(64),
      FLY_APP_NAME: fly.app,
      FLY_MACHINE_ID: '148ed193b95289',
      FLY_REGION: 'iad',
    },
    '/tmp',
  );
  expect(config.storage.driver).toBe('s3');
  expect(config.storage.s3).toMatchObject({ bucket: 'stowage-files', endpoint: 'https://fly.storage.tigris.dev' });
  expect(config.port).toBe(fly.http_service.internal_port);
});

it('runs commands the CLI has: serve and worker as processes, migrate before each release', async () => {
  const commands = await cliCommands();
  const run = (line: string) => commandOf(line.split(/\s+/));
  expect(Object.fromEntries(Object.entries(fly.processes).map(([group, line]) => [group, run(line)]))).toEqual({ app: 'serve', worker: 'worker' });
  expect(run(fly.deploy.release_command)).toBe('migrate');
  for (const command of ['serve', 'worker', 'migrate']) expect(commands).toContain(command);
  expect(fly.http_service.processes).toEqual(['app']);
});

it('names the app with a placeholder that the docs tell you to replace with --name', () => {
  // Fly app names: lowercase letters, digits and dashes (flyctl refuses anything else).
  expect(fly.app).toMatch(/^[a-z0-9-]+$/);
  expect(fly.app).toMatch(/change-me/);
  const deploy = fs.readFileSync(path.join(ROOT, 'docs/deploy.md'), 'utf8');
  const flySection = deploy.slice(deploy.indexOf('## Fly.io'), deploy.indexOf('\n## ', deploy.indexOf('## Fly.io') + 1));
  const launch = flySection.split('\n').find((line) => line.startsWith('$ fly launch'));
  expect(launch).toMatch(/--copy-config --name \S+/);
  expect(launch).toContain(fly.app);
});
