import fs from 'node:fs';
import path from 'node:path';

/** A running SHA-256 whose state can be saved with an upload's offset and loaded on any instance. */
export interface SavableSha256 {
  update(chunk: Uint8Array): void;
  save(): Uint8Array;
  /** Hex digest of what was hashed so far. */
  digest(): string;
}

interface NativeSha256 {
  init(): Buffer;
  update(state: Buffer, bytes: Uint8Array): void;
  digest(state: Buffer): Buffer;
  stateSize: number;
}

/** Marks a saved native state (OpenSSL's SHA256_CTX follows), so a hash-wasm state is never loaded as one. */
const NATIVE_TAG = Buffer.from('stw-ossl-sha256:');

/** native/build/sha256.node under the package root (the same from src/ and dist/src/), when it was built at install. */
function loadNative(from = __dirname): NativeSha256 | undefined {
  for (let dir = from; path.dirname(dir) !== dir; dir = path.dirname(dir)) {
    if (!fs.existsSync(path.join(dir, 'package.json'))) continue;
    try {
      return require(path.join(dir, 'native', 'build', 'sha256.node')) as NativeSha256;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

const native = loadNative();

/** Which implementation this process hashes with: `native` (OpenSSL, built at install) or `hash-wasm`. */
export const sha256Implementation = native ? 'native' : 'hash-wasm';

function nativeHasher(n: NativeSha256, state: Buffer): SavableSha256 {
  return {
    update: (chunk) => n.update(state, chunk),
    save: () => Buffer.concat([NATIVE_TAG, state]),
    digest: () => n.digest(state).toString('hex'),
  };
}

/** hash-wasm, loaded only where the native hasher was not built. */
async function wasmSha256() {
  return (await import('hash-wasm')).createSHA256();
}

/** A new SHA-256, native when it was built. */
export async function newSha256(): Promise<SavableSha256> {
  if (native) return nativeHasher(native, native.init());
  const hasher = (await wasmSha256()).init();
  return { update: (chunk) => hasher.update(chunk), save: () => hasher.save(), digest: () => hasher.digest('hex') };
}

/**
 * A SHA-256 going on from a saved state; undefined when this process can't load it (saved by
 * the other implementation: instances built differently), so the caller treats the hash as out of step.
 */
export async function loadSha256(saved: Uint8Array): Promise<SavableSha256 | undefined> {
  const isNative = saved.length === NATIVE_TAG.length + (native?.stateSize ?? 112) && Buffer.from(saved.subarray(0, NATIVE_TAG.length)).equals(NATIVE_TAG);
  if (isNative) return native && nativeHasher(native, Buffer.from(saved.subarray(NATIVE_TAG.length)));
  if (native) return undefined;
  const hasher = await wasmSha256();
  try {
    hasher.load(saved);
  } catch {
    return undefined;
  }
  return { update: (chunk) => hasher.update(chunk), save: () => hasher.save(), digest: () => hasher.digest('hex') };
}
