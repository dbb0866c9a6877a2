import { PassThrough } from 'node:stream';
import { BlobNotFound } from '../../src/errors';
import type { Store } from '../../src/storage/store';
import { chunked, failingAfter, randomData, readAll, sha256 } from '../helpers/streams';

export interface StoreHarness {
  store: Store;
  /** Every key the store physically holds, including temp/partial objects, for leak checks. */
  physicalKeys(): Promise<string[]>;
  cleanup(): Promise<void>;
}

/** The optional capabilities a driver has, whose contract is checked too. */
export interface StoreCapabilities {
  /** `copy`: server-side copies inside the store. */
  copy?: boolean;
  /** `read`: a blob's bytes in one buffer (small downloads). */
  read?: boolean;
}

/**
 * The contract every Store driver must satisfy. Each driver's test file calls this with a factory
 * that builds a fresh, empty store on real resources (temp dirs, an S3-protocol server...).
 */
export function storeContract(name: string, makeHarness: () => Promise<StoreHarness>, capabilities: StoreCapabilities = {}): void {
  describe(`Store contract: ${name}`, () => {
    let h: StoreHarness;
    beforeEach(async () => {
      h = await makeHarness();
    });
    afterEach(async () => {
      await h.store.close();
      await h.cleanup();
    });

    it('round-trips bytes through put and get', async () => {
      const data = randomData(3 * 1024 * 1024 + 17);
      const { size } = await h.store.put('files/ab/one', chunked(data));
      expect(size).toBe(data.length);
      const back = await readAll(await h.store.get('files/ab/one'));
      expect(sha256(back)).toBe(sha256(data));
    });

    it('stores an empty blob', async () => {
      expect((await h.store.put('empty', chunked(Buffer.alloc(0)))).size).toBe(0);
      expect((await readAll(await h.store.get('empty'))).length).toBe(0);
    });

    it('reads inclusive byte ranges', async () => {
      const data = randomData(100_000);
      await h.store.put('r', chunked(data));
      expect(await readAll(await h.store.get('r', { start: 0, end: 0 }))).toEqual(data.subarray(0, 1));
      expect(await readAll(await h.store.get('r', { start: 1000, end: 1999 }))).toEqual(data.subarray(1000, 2000));
      expect(await readAll(await h.store.get('r', { start: 99_990, end: 99_999 }))).toEqual(data.subarray(99_990));
    });

    it('reports size with head, and undefined for a missing key', async () => {
      await h.store.put('h/x', chunked(Buffer.from('hello')));
      expect(await h.store.head('h/x')).toMatchObject({ key: 'h/x', size: 5 });
      expect(await h.store.head('h/nothing')).toBeUndefined();
    });

    it('rejects get of a missing key with BlobNotFound', async () => {
      await expect(h.store.get('no/such/key')).rejects.toBeInstanceOf(BlobNotFound);
    });

    it('overwrites a key atomically with the new bytes', async () => {
      await h.store.put('k', chunked(Buffer.from('old contents')));
      await h.store.put('k', chunked(Buffer.from('new')));
      expect((await readAll(await h.store.get('k'))).toString()).toBe('new');
    });

    it('deletes idempotently', async () => {
      await h.store.put('d', chunked(Buffer.from('x')));
      await h.store.delete('d');
      await h.store.delete('d');
      expect(await h.store.head('d')).toBeUndefined();
      await expect(h.store.get('d')).rejects.toBeInstanceOf(BlobNotFound);
    });

    it('lists keys in order, page by page, with a prefix', async () => {
      const keys = ['a/1', 'a/2', 'a/3', 'b/1', 'b/2/x', 'c'];
      for (const key of [...keys].reverse()) await h.store.put(key, chunked(Buffer.from(key)));
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await h.store.list({ limit: 2, cursor });
        expect(page.items.length).toBeLessThanOrEqual(2);
        seen.push(...page.items.map((i) => i.key));
        cursor = page.cursor;
      } while (cursor);
      expect(seen).toEqual(keys);
      const b = await h.store.list({ prefix: 'b/' });
      expect(b.items.map((i) => [i.key, i.size])).toEqual([['b/1', 3], ['b/2/x', 5]]);
      expect(b.cursor).toBeUndefined();
    });

    it('leaves nothing behind when the body fails mid-write', async () => {
      await expect(h.store.put('broken', failingAfter(randomData(256 * 1024)))).rejects.toThrow('client went away');
      expect(await h.store.head('broken')).toBeUndefined();
      expect(await h.physicalKeys()).toEqual([]);
    });

    it('leaves nothing behind when aborted mid-write, and rejects with the abort reason', async () => {
      const body = new PassThrough();
      const controller = new AbortController();
      const put = h.store.put('aborted', body, { signal: controller.signal });
      body.write(randomData(128 * 1024));
      await new Promise((resolve) => setImmediate(resolve));
      const reason = new Error('upload cancelled');
      controller.abort(reason);
      await expect(put).rejects.toBe(reason);
      expect(await h.store.head('aborted')).toBeUndefined();
      expect(await h.physicalKeys()).toEqual([]);
    });

    it('keeps the old bytes when an overwrite fails', async () => {
      await h.store.put('keep', chunked(Buffer.from('original')));
      await expect(h.store.put('keep', failingAfter(Buffer.from('partial')))).rejects.toThrow();
      expect((await readAll(await h.store.get('keep'))).toString()).toBe('original');
    });

    it('writes different keys concurrently without mixing bytes', async () => {
      const blobs = Array.from({ length: 8 }, (_, i) => ({ key: `c/${i}`, data: randomData(200_000 + i) }));
      await Promise.all(blobs.map((b) => h.store.put(b.key, chunked(b.data, 7_000))));
      for (const b of blobs) {
        expect(sha256(await readAll(await h.store.get(b.key)))).toBe(sha256(b.data));
      }
    });

    it('rejects keys that could escape the store', async () => {
      for (const key of ['../x', 'a/../../x', '/abs', 'a//b', '.hidden', '']) {
        await expect(h.store.put(key, chunked(Buffer.from('x')))).rejects.toThrow(/Invalid store key/);
      }
    });

    if (capabilities.copy) {
      it('copies an object to another key by itself, leaving the source and nothing else', async () => {
        const data = randomData(3 * 1024 * 1024 + 5);
        await h.store.put('c/source', chunked(data));
        await h.store.put('c/target', chunked(Buffer.from('old')));
        expect(await h.store.copy!('c/source', 'c/target', { contentType: 'text/plain' })).toEqual({ size: data.length });
        expect(sha256(await readAll(await h.store.get('c/target')))).toBe(sha256(data));
        expect(sha256(await readAll(await h.store.get('c/source')))).toBe(sha256(data));
        expect((await h.store.list({ prefix: 'c/' })).items.map((i) => i.key)).toEqual(['c/source', 'c/target']);
      });

      it('copies an empty object', async () => {
        await h.store.put('e', chunked(Buffer.alloc(0)));
        expect(await h.store.copy!('e', 'e2')).toEqual({ size: 0 });
        expect((await readAll(await h.store.get('e2'))).length).toBe(0);
      });

      it('rejects a copy of a missing source with BlobNotFound, creating nothing', async () => {
        await expect(h.store.copy!('no/such', 'c/target')).rejects.toBeInstanceOf(BlobNotFound);
        expect(await h.store.head('c/target')).toBeUndefined();
      });

      it('rejects copies from or to keys that could escape the store', async () => {
        await h.store.put('x', chunked(Buffer.from('x')));
        for (const [source, key] of [['../x', 'y'], ['a/../../x', 'y'], ['/x', 'y'], ['x', '.hidden'], ['x', '../y'], ['x', '']]) {
          await expect(h.store.copy!(source, key)).rejects.toThrow(/Invalid store key/);
        }
      });
    } else {
      it('makes no server-side copies (the capability is declared to the contract with its tests)', () => {
        expect(h.store.copy).toBeUndefined();
      });
    }

    if (capabilities.read) {
      it('reads a blob, or a part of it, into one buffer', async () => {
        const data = randomData(40_000);
        await h.store.put('s/one', chunked(data));
        expect(await h.store.read!('s/one', 0, data.length)).toEqual(data);
        expect(await h.store.read!('s/one', 1000, 10)).toEqual(data.subarray(1000, 1010));
        expect(await h.store.read!('s/one', data.length - 1, 1)).toEqual(data.subarray(-1));
        await h.store.put('s/empty', chunked(Buffer.alloc(0)));
        expect((await h.store.read!('s/empty', 0, 0)).length).toBe(0);
      });

      it('rejects a read of a missing key with BlobNotFound', async () => {
        await expect(h.store.read!('no/such/key', 0, 1)).rejects.toBeInstanceOf(BlobNotFound);
      });

      it('rejects a read past the blob\'s end rather than answer with fewer bytes', async () => {
        await h.store.put('s/short', chunked(Buffer.from('0123456789')));
        await expect(h.store.read!('s/short', 0, 11)).rejects.toThrow(/ends before byte 11/);
        await expect(h.store.read!('s/short', 8, 3)).rejects.toThrow(/ends before byte 11/);
      });
    } else {
      it('has no buffered reads (the capability is declared to the contract with its tests)', () => {
        expect(h.store.read).toBeUndefined();
      });
    }

    it('passes its probe', async () => {
      await expect(h.store.probe()).resolves.toBeUndefined();
      expect(await h.physicalKeys()).toEqual([]);
    });

    it('passes its readiness check, leaving nothing behind', async () => {
      await expect(h.store.check()).resolves.toBeUndefined();
      expect(await h.physicalKeys()).toEqual([]);
    });
  });
}
