import { ConfigError } from '../errors';
import type { S3StoreOptions } from '../storage/s3-options';

/**
 * Checks STORAGE_MIRROR against the rest of the storage configuration: the mirror must be a
 * different store than the primary (a copy on the same disk or bucket protects nothing), and the
 * variables that configure it must be set.
 */
export function readMirror(o: {
  mirror?: 's3' | 'volume';
  primary: string;
  storagePath: string;
  volumePath: string;
  s3?: S3StoreOptions;
}): 's3' | 'volume' | undefined {
  if (!o.mirror) return undefined;
  if (o.mirror === o.primary) {
    throw new ConfigError([`STORAGE_MIRROR: must differ from STORAGE (both are ${o.primary}; a copy in the same store protects nothing)`]);
  }
  if (o.mirror === 's3' && !o.s3) {
    throw new ConfigError(['STORAGE_MIRROR: s3 needs S3_BUCKET (and the other S3_* variables) set to the bucket to copy files to']);
  }
  if (o.mirror === 'volume' && o.primary === 'tmp' && o.storagePath === o.volumePath) {
    throw new ConfigError(['STORAGE_MIRROR: volume needs STORAGE_PATH set to a directory other than the tmp store']);
  }
  return o.mirror;
}
