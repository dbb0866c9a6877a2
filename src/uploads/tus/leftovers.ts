import fsp from 'node:fs/promises';
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Config } from '../../config';
import type { S3StoreOptions } from '../../storage/s3-options';

/** What the tus store holds for one upload: a directory's `<id>` and `<id>.json`; a bucket's `<id>`, `<id>.info` and `<id>.part`. */
export interface StoredTusUpload {
  fileId: string;
  /** Where it is, relative to the store's root: `.tus/<file id>`. */
  key: string;
  /** Its files (or objects), as the place names them. */
  names: string[];
  bytes: number;
  /** When it was last written. */
  modifiedAt: Date;
}

/**
 * Where resumable uploads keep their bytes between requests, as the doctor sees it: each upload's
 * files grouped, a page at a time, and removed as a whole. Its multipart uploads in a bucket are
 * not here: the incomplete-upload check judges those.
 */
export interface TusUploadPlace {
  /** The store's driver, as records name it. */
  store: string;
  list(): AsyncGenerator<StoredTusUpload[]>;
  remove(upload: StoredTusUpload): Promise<void>;
}

const TUS_DIR = '.tus';
/** Uploads per page: bounds what is held and asked of the catalog at once. */
const PAGE = 200;
/** What @tus/file-store (`.json`) and @tus/s3-store (`.info`, `.part`) keep beside an upload's bytes. */
const SUFFIX = /\.(json|info|part)$/;

/** The place of the configured store's resumable uploads; undefined for the memory store (gone with its process). */
export function tusUploadPlace(storage: Config['storage']): TusUploadPlace | undefined {
  if (storage.driver === 's3') return storage.s3 && bucketPlace(storage.s3);
  if (storage.driver === 'memory') return undefined;
  return directoryPlace(storage.driver, path.join(storage.path, TUS_DIR));
}

function directoryPlace(store: string, directory: string): TusUploadPlace {
  return {
    store,
    async *list() {
      const names = await fsp.readdir(directory).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return [] as string[];
        throw err;
      });
      const groups = new Map<string, string[]>();
      for (const name of names.sort()) {
        const id = name.replace(SUFFIX, '');
        groups.set(id, [...(groups.get(id) ?? []), name]);
      }
      let page: StoredTusUpload[] = [];
      for (const [fileId, members] of groups) {
        let bytes = 0;
        let modified = 0;
        for (const name of members) {
          const stat = await fsp.stat(path.join(directory, name)).catch(() => undefined);
          if (!stat) continue;
          bytes += stat.size;
          modified = Math.max(modified, stat.mtimeMs);
        }
        if (modified === 0) continue;
        page.push({ fileId, key: `${TUS_DIR}/${fileId}`, names: members.map((n) => path.join(directory, n)), bytes, modifiedAt: new Date(modified) });
        if (page.length >= PAGE) {
          yield page;
          page = [];
        }
      }
      if (page.length) yield page;
    },
    async remove(upload) {
      for (const name of upload.names) await fsp.rm(name, { force: true });
    },
  };
}

function bucketPlace(s3: S3StoreOptions): TusUploadPlace {
  // The AWS SDK is loaded when the doctor first looks (about 3 MB of heap a server would hold for nothing).
  let sdk: Promise<{ sdk: typeof import('@aws-sdk/client-s3'); client: S3Client }> | undefined;
  const connect = () =>
    (sdk ??= Promise.all([import('@aws-sdk/client-s3'), import('../../storage/s3-http')]).then(([loaded, { s3ClientConfig }]) => {
      // As the store's own calls: a silent endpoint fails the doctor's run instead of hanging it.
      const client = new loaded.S3Client(s3ClientConfig(s3, 3));
      return { sdk: loaded, client };
    }));
  const prefix = `${s3.prefix ?? ''}${TUS_DIR}/`;
  return {
    store: 's3',
    async *list() {
      // Keys come in order, so an upload's objects (`<id>`, `<id>.info`, `<id>.part`) are adjacent.
      let token: string | undefined;
      let current: StoredTusUpload | undefined;
      let page: StoredTusUpload[] = [];
      const { sdk: { ListObjectsV2Command }, client } = await connect();
      do {
        const res = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix, ContinuationToken: token }));
        for (const object of res.Contents ?? []) {
          if (!object.Key) continue;
          const fileId = object.Key.slice(prefix.length).replace(SUFFIX, '');
          if (current?.fileId !== fileId) {
            if (current) page.push(current);
            current = { fileId, key: `${TUS_DIR}/${fileId}`, names: [], bytes: 0, modifiedAt: new Date(0) };
          }
          current.names.push(object.Key);
          current.bytes += object.Size ?? 0;
          if (object.LastModified && object.LastModified > current.modifiedAt) current.modifiedAt = object.LastModified;
        }
        if (page.length >= PAGE) {
          yield page;
          page = [];
        }
        token = res.IsTruncated ? res.NextContinuationToken : undefined;
      } while (token);
      if (current) page.push(current);
      if (page.length) yield page;
    },
    async remove(upload) {
      const { sdk: { DeleteObjectCommand }, client } = await connect();
      for (const key of upload.names) await client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: key }));
    },
  };
}
