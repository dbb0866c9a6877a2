import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { buildTestApp, type TestApp } from '../helpers/app';
import { ROOT } from '../helpers/service';
import { makeTempDir } from '../helpers/tmp';
import type { Worker } from '../../src/tasks/worker';
import { Receiver } from './receiver';

const execFileAsync = promisify(execFile);

/** The built CLI: `stowage webhooks add|list|remove` on the catalog a server then uses. */
let t: TestApp | undefined;
let worker: Worker | undefined;
let r: Receiver | undefined;

afterEach(async () => {
  await worker?.stop(0);
  await t?.close();
  await r?.stop();
});

it('webhooks add prints a secret once that verifies the deliveries; list never shows it; remove stops them', async () => {
  const dir = await makeTempDir();
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', STORAGE: 'volume', STORAGE_PATH: path.join(dir, 'files'), TMPDIR: dir, LOG_LEVEL: 'warn' };
  const cli = (...args: string[]) => execFileAsync(process.execPath, [path.join(ROOT, 'dist/src/cli/index.js'), 'webhooks', ...args], { cwd: dir, env });
  r = new Receiver('unknown yet');
  await r.start();

  const added = await cli('add', 'carol', r.url, '--events', 'file.ready,task.failed');
  const secret = added.stdout.trim();
  expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
  const id = /added (wh_[0-9a-f]+) \(owner carol, file\.ready, task\.failed\)/.exec(added.stderr)?.[1];
  expect(id).toBeDefined();
  (r as { secret: string }).secret = secret;

  const listed = await cli('list');
  expect(listed.stdout).toContain(`${id}  carol  ${r.url}  file.ready,task.failed`);
  expect(listed.stdout).not.toContain(secret.slice(6));
  await expect(cli('add', 'carol', 'ftp://app.example/')).rejects.toMatchObject({ stderr: expect.stringContaining('must be an http:// or https:// URL') });
  await expect(cli('add', 'carol', r.url, '--events', 'file.made')).rejects.toMatchObject({ stderr: expect.stringContaining('expected a comma-separated list of file.ready') });

  t = await buildTestApp({ WEBHOOK_RETRY_DELAY: '20ms' }, dir);
  worker = t.startTaskWorker();
  const res = await t.http('carol').post('/v1/files').attach('file', Buffer.from('bytes'), 'c.txt');
  await r.waitForEvents(1);
  expect(r.rejected).toEqual([]);
  expect(r.events).toEqual([expect.objectContaining({ type: 'file.ready', data: expect.objectContaining({ id: res.body.files[0].id, owner: 'carol' }) })]);

  expect((await cli('remove', id!)).stdout.trim()).toBe(`removed ${id}`);
  await expect(cli('remove', id!)).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining(`no endpoint ${id}`) });
  expect((await cli('list')).stdout.trim()).toBe('No endpoints.');
});
