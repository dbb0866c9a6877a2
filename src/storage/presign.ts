import type { PresignGetOptions, PresignPutOptions } from './s3';
import type { Store } from './store';

/** Stores that can hand out URLs for reading and writing a blob without going through stowage. */
export interface Presigner {
  presignGet(key: string, options: PresignGetOptions): Promise<string>;
  presignPut(key: string, options: PresignPutOptions): Promise<string>;
}

export function canPresign(store: Store): store is Store & Presigner {
  const candidate = store as Store & Partial<Presigner>;
  return typeof candidate.presignGet === 'function' && typeof candidate.presignPut === 'function';
}
