import type { UploadGrant } from '../auth/principal';
import type { Config } from '../config';

export type UploadLimits = Config['uploads'];

/**
 * The limits of one upload request: the server's (MAX_UPLOAD_BYTES, MAX_FILES_PER_REQUEST,
 * ALLOWED_CONTENT_TYPES), narrowed by an upload link's grant when the caller holds one. A link's
 * types were checked against the server's when it was made; both lists are still applied to each
 * file (see uploadFiles), in case the server's changed since.
 */
export function uploadLimitsFor(uploads: UploadLimits, grant: UploadGrant | undefined): UploadLimits {
  if (!grant) return uploads;
  return {
    maxBytes: Math.min(uploads.maxBytes, grant.maxBytes),
    maxFiles: Math.min(uploads.maxFiles, grant.maxFiles),
    allowedContentTypes: grant.allowedTypes.length ? grant.allowedTypes : uploads.allowedContentTypes,
  };
}
