import fsp from 'node:fs/promises';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import { bearer, createKeyWithCli, freePort, runService, type ServiceProcess } from '../helpers/service';
import { randomData, sha256 } from '../helpers/streams';
import { makeTempDir } from '../helpers/tmp';

let dir: string;
let svc: ServiceProcess | undefined;
afterEach(async () => {
  await svc?.stop();
  await fsp.rm(dir, { recursive: true, force: true });
});

/**
 * A form of many small files: each part is still being stored (synced, published) while the next
 * one streams in. Listening on the request once per part in flight made Node print a
 * "possible memory leak" warning to the service's stderr from the eleventh.
 */
it('stores a form of 40 small files on a volume without a listener-leak warning in the service\'s output', async () => {
  dir = await makeTempDir('stowage-many-parts-');
  const env = { STORAGE: 'volume', STORAGE_PATH: path.join(dir, 'files'), MAX_FILES_PER_REQUEST: '40', HOME: dir };
  const key = await createKeyWithCli(env, 'alice', 'write', { cwd: dir });
  const port = await freePort();
  svc = runService(['serve'], { cwd: dir, env: { ...env, PORT: String(port), HOST: '127.0.0.1' } });
  await svc.waitFor((l) => l.msg === 'listening');

  const files = Array.from({ length: 40 }, (_, i) => ({ name: `part-${i}.bin`, data: randomData(16 * 1024 + i) }));
  const form = new FormData();
  for (const f of files) form.append('file', new Blob([f.data]), f.name);
  const res = await fetch(`http://127.0.0.1:${port}/v1/files`, { method: 'POST', body: form, headers: bearer(key) });
  expect(res.status).toBe(201);
  const body = (await res.json()) as { files: { name: string; sha256: string; status: string }[] };
  expect(body.files.map((f) => [f.name, f.sha256, f.status])).toEqual(files.map((f) => [f.name, sha256(f.data), 'ready']));

  expect(await svc.stop()).toBe(0);
  await finished(svc.child.stderr!);
  expect(svc.stderr.filter((line) => /MaxListenersExceeded|memory leak/.test(line))).toEqual([]);
});
