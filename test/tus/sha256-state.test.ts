import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { createSHA256 } from 'hash-wasm';
import { loadSha256, newSha256, sha256Implementation } from '../../src/uploads/tus/sha256-state';
import { ROOT } from '../helpers/service';

/** The running sha256 of resumable uploads: saved with each chunk's offset, loaded on any instance. */
describe('the savable sha256', () => {
  it('is the native one (OpenSSL, built by npm install): hash-wasm is a third of its speed', () => {
    expect(sha256Implementation).toBe('native');
  });

  it('gives the digest of all the bytes across a save and a load, at any split, empty included', async () => {
    const bytes = randomBytes(1_000_003);
    for (const split of [0, 1, 63, 64, 65, 777, bytes.length]) {
      const first = await newSha256();
      first.update(bytes.subarray(0, split));
      const saved = first.save();
      // The state is copied on save: hashing on doesn't change what was saved.
      first.update(Buffer.from('more'));
      const resumed = await loadSha256(Uint8Array.from(saved));
      resumed!.update(bytes.subarray(split));
      expect(resumed!.digest()).toBe(createHash('sha256').update(bytes).digest('hex'));
    }
    expect((await newSha256()).digest()).toBe(createHash('sha256').digest('hex'));
  });

  it('does not load a state saved by hash-wasm (an instance built without the native one), nor garbage', async () => {
    const wasm = (await createSHA256()).init();
    wasm.update(Buffer.from('abc'));
    expect(await loadSha256(wasm.save())).toBeUndefined();
    expect(await loadSha256(Buffer.from('stw-ossl-sha256:short'))).toBeUndefined();
  });
});

describe('scripts/build-native.js', () => {
  it('never fails the install: without a compiler it says so in one line and leaves a note', async () => {
    const skipped = path.join(ROOT, 'native/build/sha256.skipped');
    const run = await promisify(execFile)(process.execPath, ['scripts/build-native.js'], { cwd: ROOT, env: { ...process.env, CC: '/nonexistent/cc' } });
    try {
      expect(run.stderr).toBe('stowage: could not build the native sha256 (no C compiler (/nonexistent/cc)): resumable uploads will hash with hash-wasm (slower)\n');
      expect(fs.readFileSync(skipped, 'utf8')).toContain('no C compiler');
    } finally {
      // Built again, as npm install left it.
      await promisify(execFile)(process.execPath, ['scripts/build-native.js'], { cwd: ROOT });
    }
    expect(fs.existsSync(skipped)).toBe(false);
    expect(fs.existsSync(path.join(ROOT, 'native/build/sha256.node'))).toBe(true);
  });
});
