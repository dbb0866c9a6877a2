import type { DataStore } from '@tus/utils';
import type { S3StoreOptions } from '../../storage/s3-options';

/** What a finished upload leaves in the tus store: removed once its file is stored. */
export type FinishedRemover = { removeFinished(id: string): Promise<void> };

/**
 * @tus/s3-store's store, one multipart upload per tus upload, in stowage's bucket. Its `remove`
 * aborts the multipart upload first, which S3 refuses once the upload completed: a finished
 * upload's object and `.info` are deleted directly.
 */
export async function s3DataStore(s3: S3StoreOptions, expiryMs: number): Promise<DataStore & FinishedRemover> {
  const { S3Store } = await import('@tus/s3-store');
  class FinishedS3Store extends S3Store {
    async removeFinished(id: string): Promise<void> {
      await this.client.deleteObjects({ Bucket: this.bucket, Delete: { Objects: [{ Key: id }, { Key: this.infoKey(id) }] } });
      await this.clearCache(id);
    }
  }
  const { bucket, region, endpoint, forcePathStyle, credentials, checksums, partSize } = s3;
  const when = checksums === 'when_required' ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED';
  return new FinishedS3Store({
    // S3 takes parts of 5 MiB or more.
    partSize: Math.max(partSize, 5 * 1024 * 1024),
    // Expiry is stowage's sweep (the records' expires_at), not object tags.
    useTags: false,
    expirationPeriodInMilliseconds: expiryMs,
    s3ClientConfig: { bucket, region, endpoint, forcePathStyle, credentials, requestChecksumCalculation: when, responseChecksumValidation: when },
  });
}
