import type { PresignGetOptions, PresignPutOptions } from './s3';
import type { Store, UploadedPart } from './store';

/** Stores that can hand out URLs for reading and writing a blob without going through stowage. */
export interface Presigner {
  presignGet(key: string, options: PresignGetOptions): Promise<string>;
  presignPut(key: string, options: PresignPutOptions): Promise<string>;
}

export function canPresign(store: Store): store is Store & Presigner {
  const candidate = store as Store & Partial<Presigner>;
  return typeof candidate.presignGet === 'function' && typeof candidate.presignPut === 'function';
}

/** Stores whose clients can PUT a large object in parts, each to its own presigned URL (S3 multipart). */
export interface PartPresigner extends Presigner {
  createMultipartUpload(key: string, options: { contentType: string }): Promise<string>;
  presignUploadPart(key: string, uploadId: string, partNumber: number, options: { expiresIn: number; contentLength: number }): Promise<string>;
  listParts(key: string, uploadId: string): Promise<UploadedPart[]>;
  completeMultipartUpload(key: string, uploadId: string, parts: { partNumber: number; etag: string }[]): Promise<void>;
  abortIncompleteUpload(upload: { key: string; uploadId: string }): Promise<void>;
}

export function canPresignParts(store: Store): store is Store & PartPresigner {
  const candidate = store as Store & Partial<PartPresigner>;
  return canPresign(store) && typeof candidate.createMultipartUpload === 'function' && typeof candidate.presignUploadPart === 'function';
}
