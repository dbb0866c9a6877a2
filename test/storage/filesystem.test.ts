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
  }, { read: true });
}

// Temp files a crash left are swept by their writer, not at start-up: test/faults/leftover-rules.test.ts.
