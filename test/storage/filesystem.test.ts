import fsp from 'node:fs/promises';
import path from 'node:path';
import { FileSystemStore } from '../../src/storage/filesystem';
import { listFilesDeep, makeTempDir } from '../helpers/tmp';
import { storeContract } from './contract';

for (const driver of ['volume', 'tmp'] as const) {
  storeContract(`filesystem (${driver})`, async () => {
    const dir = await makeTempDir();
    const store = new FileSystemStore(driver, path.join(dir, 'files'));
    await store.prepare();
    return {
      store,
      physicalKeys: () => listFilesDeep(path.join(dir, 'files')),
      cleanup: () => fsp.rm(dir, { recursive: true, force: true }),
    };
  });
}

describe('FileSystemStore startup', () => {
  it('removes temp files left by a crash, but not recent ones', async () => {
    const dir = await makeTempDir();
    const store = new FileSystemStore('volume', dir);
    await store.prepare();
    const stale = path.join(dir, '.tmp', 'stale.part');
    const fresh = path.join(dir, '.tmp', 'fresh.part');
    await fsp.writeFile(stale, 'x');
    await fsp.writeFile(fresh, 'x');
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    await fsp.utimes(stale, twoHoursAgo, twoHoursAgo);
    await store.prepare();
    expect(await listFilesDeep(dir)).toEqual(['.tmp/fresh.part']);
    await fsp.rm(dir, { recursive: true, force: true });
  });
});
