import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../helpers/service';

/** Where package.json's `bin` points: the CLI every deploy file runs. */
export const CLI_PATH = 'dist/src/cli/index.js';

/** The commands the built CLI lists in its `--help` (serve, worker, migrate...). */
export async function cliCommands(): Promise<string[]> {
  const { stdout } = await promisify(execFile)(process.execPath, [path.join(ROOT, CLI_PATH), '--help'], { env: { PATH: process.env.PATH } });
  const listed = stdout.slice(stdout.indexOf('Commands:'));
  return [...listed.matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((m) => m[1]);
}

/** The stowage command a deploy file's `node dist/src/cli/index.js <command> ...` runs, if it runs the CLI. */
export function commandOf(words: string[]): string | undefined {
  const at = words.indexOf(CLI_PATH);
  return at > 0 && words[at - 1] === 'node' ? words[at + 1] : undefined;
}
