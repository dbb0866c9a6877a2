import { ConfigError, StoreUnavailable } from '../errors';
import type { Store } from './store';

/** Why a store is being opened: what the operator is told to fix depends on it. */
export type StoreRole = 'primary' | 'mirror' | 'migration target';

/**
 * Prepares a store (creates its directories) and proves it can write, read and delete, before
 * anything relies on it: no request is the first to find a missing or read-only directory or a
 * wrong bucket. Failures are one ConfigError line naming the variable to fix.
 */
export async function proveStore(store: Store, role: StoreRole): Promise<void> {
  try {
    await store.prepare?.();
    await store.probe();
  } catch (err) {
    throw new ConfigError([problemLine(store, role, err)], { cause: err });
  }
}

function problemLine(store: Store, role: StoreRole, err: unknown): string {
  if (store.driver === 's3') {
    // The S3 probe already names the variable to fix (S3_BUCKET, S3_ENDPOINT, the keys...).
    const reason = err instanceof StoreUnavailable ? err.message : `S3_BUCKET: ${store.location} cannot be used (${(err as Error).message})`;
    return role === 'mirror' ? `${reason} [the STORAGE_MIRROR=s3 store]` : reason;
  }
  const variable = store.driver === 'tmp' ? 'TMPDIR' : 'STORAGE_PATH';
  const fix =
    role === 'mirror'
      ? 'it is the STORAGE_MIRROR=volume store; set STORAGE_PATH to a writable directory'
      : role === 'migration target'
        ? 'set STORAGE_PATH to a writable directory'
        : store.driver === 'tmp'
          ? 'set TMPDIR to a writable directory, or STORAGE=memory'
          : 'set STORAGE_PATH to a writable directory, or STORAGE=tmp';
  return `${variable}: ${store.location} is not writable (${fix})`;
}
