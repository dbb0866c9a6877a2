import { InsufficientStorage } from '../../src/errors';
import { MemoryStore } from '../../src/storage/memory';
import { chunked, randomData } from '../helpers/streams';
import { storeContract } from './contract';

storeContract('memory', async () => {
  const store = new MemoryStore(64 * 1024 * 1024);
  return {
    store,
    physicalKeys: async () => (await store.list()).items.map((i) => i.key),
    cleanup: async () => {},
  };
}, { read: true });

describe('MemoryStore cap', () => {
  it('refuses a write past MEMORY_STORE_MAX_BYTES and keeps nothing of it', async () => {
    const store = new MemoryStore(1000);
    await store.put('a', chunked(randomData(600)));
    await expect(store.put('b', chunked(randomData(600), 100))).rejects.toBeInstanceOf(InsufficientStorage);
    expect((await store.list()).items.map((i) => i.key)).toEqual(['a']);
    await store.delete('a');
    await expect(store.put('b', chunked(randomData(600)))).resolves.toEqual({ size: 600 });
  });
});
