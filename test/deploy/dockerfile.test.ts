import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { CONFIG_VARIABLES } from '../../src/config';
import { buildTestApp } from '../helpers/app';
import { freePort, ROOT } from '../helpers/service';
import { cliCommands, commandOf } from './cli-commands';

/**
 * The Dockerfile read as hadolint would (no container engine runs here to build it): pinned
 * bases, apt hygiene, exec-form CMD and HEALTHCHECK, a non-root user; its settings are stowage's,
 * and its HEALTHCHECK command, run for real, tells a serving stowage from a dead one.
 */

interface Instruction {
  keyword: string;
  args: string;
}

/** Instructions with their continuation lines joined; comments and blank lines dropped. */
function instructions(text: string): Instruction[] {
  const logical = text
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n')
    .replace(/\\\n/g, ' ');
  return logical
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [, keyword, args] = /^\s*(\S+)\s+(.*)$/.exec(line)!;
      return { keyword: keyword.toUpperCase(), args: args.trim() };
    });
}

const dockerfile = fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
const all = instructions(dockerfile);
const of = (keyword: string) => all.filter((i) => i.keyword === keyword);
const execForm = (args: string) => JSON.parse(args) as string[];

/** Node reads it too (Express hides stack traces in production), but stowage's config does not. */
const NOT_STOWAGE_SETTINGS = ['NODE_ENV'];

it('builds on node images pinned to the major the engines field deploys (Node 24), never latest', () => {
  const bases = of('FROM').map((i) => i.args.split(/\s+/)[0]);
  expect(bases).toHaveLength(2);
  const { engines } = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
  // Heroku takes the newest version the range allows: its highest major is what deploys run.
  const deployed = Math.max(...[...engines.node.matchAll(/(\d+)\.x/g)].map((m) => Number(m[1])));
  expect(deployed).toBe(24);
  for (const base of bases) expect(base).toMatch(new RegExp(`^node:${deployed}(\\.\\d+)*-[a-z]+-slim$`));
});

it('follows the hadolint rules: apt without recommends or upgrades and its lists removed, absolute WORKDIR, exec-form CMD and HEALTHCHECK, a non-root user', () => {
  for (const run of of('RUN').map((i) => i.args)) {
    expect(run).not.toMatch(/apt-get (dist-)?upgrade/);
    if (/apt-get install/.test(run)) {
      expect(run).toMatch(/apt-get install -y --no-install-recommends /);
      expect(run).toMatch(/apt-get update && /);
      expect(run).toMatch(/rm -rf \/var\/lib\/apt\/lists\/\*$/);
    }
  }
  for (const workdir of of('WORKDIR')) expect(workdir.args).toMatch(/^\//);
  expect(of('CMD')).toHaveLength(1);
  expect(Array.isArray(execForm(of('CMD')[0].args))).toBe(true);
  const [healthcheck] = of('HEALTHCHECK');
  expect(Array.isArray(execForm(healthcheck.args.slice(healthcheck.args.indexOf('CMD ') + 4)))).toBe(true);
  // The runtime stage's last USER, after its last FROM.
  const runtime = all.slice(all.map((i) => i.keyword).lastIndexOf('FROM'));
  const users = runtime.filter((i) => i.keyword === 'USER').map((i) => i.args);
  expect(users.at(-1)).toBe('node');
});

it('sets only variables stowage reads (and NODE_ENV)', () => {
  const names = of('ENV').flatMap((i) => [...i.args.matchAll(/([A-Z_][A-Z0-9_]*)=/g)].map((m) => m[1]));
  expect(names).toEqual(expect.arrayContaining(['HOST', 'PORT', 'STORAGE', 'STORAGE_PATH']));
  expect(names.filter((n) => !CONFIG_VARIABLES.includes(n) && !NOT_STOWAGE_SETTINGS.includes(n))).toEqual([]);
});

it('runs `serve` by default, a command the CLI has', async () => {
  expect(commandOf(execForm(of('CMD')[0].args))).toBe('serve');
  expect(await cliCommands()).toContain('serve');
});

it("HEALTHCHECK's command exits 0 against a serving stowage on PORT and 1 when nothing answers there", async () => {
  const [healthcheck] = of('HEALTHCHECK');
  const [command, ...args] = execForm(healthcheck.args.slice(healthcheck.args.indexOf('CMD ') + 4));
  expect(command).toBe('node');
  const run = (port: number) =>
    promisify(execFile)(process.execPath, args, { env: { PATH: process.env.PATH, PORT: String(port) }, timeout: 10_000 }).then(
      () => 0,
      (err: { code?: number }) => err.code,
    );

  const t = await buildTestApp();
  const server = http.createServer(t.app);
  try {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    expect(await run((server.address() as AddressInfo).port)).toBe(0);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await t.close();
  }
  expect(await run(await freePort())).toBe(1);
});

it('ships the PDF reports\' fallback fonts beside package.json, where the report threads look for them', () => {
  expect(of('COPY').map((i) => i.args)).toContain('fonts ./fonts');
  const { files } = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { files: string[] };
  expect(files).toContain('fonts');
});
