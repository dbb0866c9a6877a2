import { once } from 'node:events';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { ROOT, runService } from '../helpers/service';

it('stowage --version prints the package version', async () => {
  const { version } = JSON.parse(await fsp.readFile(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const run = runService(['--version'], { env: {} });
  const closed = once(run.child, 'close');
  expect(await run.exited).toBe(0);
  await closed;
  expect(run.lines.map((l) => l.msg)).toEqual([version]);
});
