import type { FileRecord } from '../catalog/files';
import { isExpired } from '../files/files';

/** The JSON a client sees for a file record. Store keys stay internal. */
export function presentFile(record: FileRecord) {
  return {
    id: record.id,
    name: record.name,
    originalName: record.original_name,
    contentType: record.content_type,
    size: Number(record.size),
    sha256: record.sha256,
    status: isExpired(record) ? 'expired' : record.status,
    statusMessage: record.status_message,
    store: record.store,
    expiresAt: record.delete_at,
    metadata: record.metadata ? (JSON.parse(record.metadata) as Record<string, string>) : {},
    createdAt: record.created_at,
    updatedAt: record.updated_at,
    links: {
      self: `/v1/files/${record.id}`,
      content: `/v1/files/${record.id}/content`,
    },
  };
}
