'use strict';
// Runs s3rver in its own process for test/helpers/s3server.ts: `node --openssl-legacy-provider
// s3rver-process.js <directory> <bucket> [port]`. s3rver encrypts ListObjectsV2 continuation tokens with
// DES, which Node 17+ only has with the legacy OpenSSL provider: without it every truncated
// listing fails with InternalError. Prints `{"port":N}` once listening; exits when stdin closes,
// so it never outlives the test process. Given a port (a restart after a kill), it listens there
// again, on the same directory: what the killed one stored is still there.
const fs = require('node:fs/promises');
const http = require('node:http');
const path = require('node:path');
const S3rver = require('s3rver');
const FilesystemStore = require('s3rver/lib/stores/filesystem');

// After deleting an object s3rver removes its key's now-empty directories, racing a concurrent
// PUT under the same prefix: the PUT's write stream then fails with ENOENT, unhandled, and the
// whole server dies (two processes probing `.stowage-probe/` at once did). S3 has no directories:
// delete the object's files and leave the directories.
FilesystemStore.prototype.deleteObject = async function deleteObject(bucket, key) {
  await Promise.all(
    ['object', 'object.md5', 'metadata.json'].map((type) =>
      fs.unlink(this.getResourcePath(bucket, key, type)).catch((err) => {
        if (err.code !== 'ENOENT') throw err;
      }),
    ),
  );
};

/** s3rver's directory of in-progress multipart uploads inside a bucket. */
const UPLOADS_DIR = '._S3rver_uploads';
const XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/';

/**
 * s3rver 3 lacks four multipart calls stowage makes; this process answers them itself, the way
 * S3 does, on s3rver's own layout (`<bucket>/._S3rver_uploads/<uploadId>/` holding `key`,
 * `metadata` and one file per part, `<n>` and `<n>.md5` once complete). Path-style only.
 * - AbortMultipartUpload (s3rver: 405, parts kept): removes the upload's directory.
 * - ListMultipartUploads (s3rver: NotImplemented): lists those directories.
 * - ListParts (s3rver: 405): lists an upload's complete parts.
 * - UploadPartCopy (s3rver: NotImplemented): stores a range of an object as a part, through
 *   s3rver's own store. (CopyObject s3rver has.)
 * Every other request goes to s3rver.
 */
async function main() {
  const [directory, bucket, port = '0'] = process.argv.slice(2);
  const s3rver = new S3rver({ directory, silent: true, configureBuckets: [{ name: bucket, configs: [] }] });
  await s3rver.configureBuckets();
  const handle = s3rver.callback();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost');
    const [bucketPart, ...keyParts] = url.pathname.slice(1).split('/');
    const requestBucket = path.basename(decodeURIComponent(bucketPart));
    // The SDK asks for a bucket as `/<bucket>/`: an empty key.
    const key = keyParts.map(decodeURIComponent).join('/');
    const uploadsDir = path.join(directory, requestBucket, UPLOADS_DIR);
    const uploadId = url.searchParams.get('uploadId');
    const shimmed = (run) => run().catch((err) => res.destroy(err));
    if (req.method === 'PUT' && uploadId !== null && req.headers['x-amz-copy-source'] !== undefined) {
      shimmed(() => uploadPartCopy(s3rver.store, requestBucket, uploadId, url.searchParams.get('partNumber'), req.headers, path.join(uploadsDir, path.basename(uploadId)), res));
    } else if (req.method === 'DELETE' && uploadId !== null) {
      shimmed(() => abortUpload(path.join(uploadsDir, path.basename(uploadId)), res));
    } else if (req.method === 'GET' && uploadId !== null) {
      shimmed(() => listParts(requestBucket, key, uploadId, uploadsDir, url.searchParams, res));
    } else if (req.method === 'GET' && key === '' && url.searchParams.has('uploads')) {
      shimmed(() => listUploads(requestBucket, uploadsDir, url.searchParams, res));
    } else {
      handle(req, res);
    }
  });
  server.listen(Number(port), '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
  });
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

const escape = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function sendXml(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/xml' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?>\n${body}`);
}

function noSuchUpload(res) {
  sendXml(res, 404, '<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message></Error>');
}

async function abortUpload(uploadDir, res) {
  const exists = await fs.stat(uploadDir).then(() => true, () => false);
  if (!exists) return noSuchUpload(res);
  await fs.rm(uploadDir, { recursive: true, force: true });
  res.writeHead(204);
  res.end();
}

/** Every upload of the bucket, sorted as S3 sorts them: by key, then (here) by id. */
async function uploadsOf(uploadsDir) {
  const ids = await fs.readdir(uploadsDir).catch(() => []);
  const uploads = await Promise.all(
    ids.map(async (id) => {
      const keyFile = path.join(uploadsDir, id, 'key');
      // An upload being aborted or completed may vanish while it is listed.
      const [key, stat] = await Promise.all([fs.readFile(keyFile, 'utf8'), fs.stat(keyFile)]).catch(() => []);
      return key === undefined ? undefined : { id, key, initiated: stat.birthtime.getTime() ? stat.birthtime : stat.mtime };
    }),
  );
  return uploads.filter(Boolean).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.id < b.id ? -1 : 1));
}

async function listUploads(bucket, uploadsDir, params, res) {
  const prefix = params.get('prefix') ?? '';
  const keyMarker = params.get('key-marker') ?? '';
  const idMarker = params.get('upload-id-marker') ?? '';
  const max = Math.min(Number(params.get('max-uploads') ?? 1000), 1000);
  const after = (u) => u.key > keyMarker || (u.key === keyMarker && idMarker !== '' && u.id > idMarker);
  const matching = (await uploadsOf(uploadsDir)).filter((u) => u.key.startsWith(prefix) && (keyMarker === '' || after(u)));
  const page = matching.slice(0, max);
  const truncated = matching.length > page.length;
  const last = page[page.length - 1];
  sendXml(
    res,
    200,
    `<ListMultipartUploadsResult xmlns="${XMLNS}"><Bucket>${escape(bucket)}</Bucket>` +
      `<KeyMarker>${escape(keyMarker)}</KeyMarker><UploadIdMarker>${escape(idMarker)}</UploadIdMarker>` +
      (truncated ? `<NextKeyMarker>${escape(last.key)}</NextKeyMarker><NextUploadIdMarker>${last.id}</NextUploadIdMarker>` : '') +
      `<Prefix>${escape(prefix)}</Prefix><MaxUploads>${max}</MaxUploads><IsTruncated>${truncated}</IsTruncated>` +
      page
        .map((u) => `<Upload><Key>${escape(u.key)}</Key><UploadId>${u.id}</UploadId><Initiated>${u.initiated.toISOString()}</Initiated><StorageClass>STANDARD</StorageClass></Upload>`)
        .join('') +
      '</ListMultipartUploadsResult>',
  );
}

async function uploadPartCopy(store, bucket, uploadId, partNumber, headers, uploadDir, res) {
  if (!(await fs.stat(uploadDir).then(() => true, () => false))) return noSuchUpload(res);
  const source = decodeURI(headers['x-amz-copy-source']).replace(/^\//, '');
  const [sourceBucket, ...sourceKey] = source.split('/');
  const range = /^bytes=(\d+)-(\d+)$/.exec(headers['x-amz-copy-source-range'] ?? '');
  const object = await store.getObject(sourceBucket, sourceKey.join('/'), range ? { start: Number(range[1]), end: Number(range[2]) } : undefined);
  if (!object) return sendXml(res, 404, '<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>');
  const { md5 } = await store.putPart(bucket, uploadId, Number(partNumber), object.content);
  sendXml(res, 200, `<CopyPartResult xmlns="${XMLNS}"><LastModified>${new Date().toISOString()}</LastModified><ETag>"${md5}"</ETag></CopyPartResult>`);
}

async function listParts(bucket, key, uploadId, uploadsDir, params, res) {
  const uploadDir = path.join(uploadsDir, path.basename(uploadId));
  const files = await fs.readdir(uploadDir).catch(() => undefined);
  if (!files) return noSuchUpload(res);
  const marker = Number(params.get('part-number-marker') ?? 0);
  const max = Math.min(Number(params.get('max-parts') ?? 1000), 1000);
  // A part is complete once s3rver wrote its .md5 beside it; one cut off mid-body is not a part.
  const numbers = files
    .filter((f) => /^\d+\.md5$/.test(f))
    .map((f) => Number(f.slice(0, -4)))
    .filter((n) => n > marker)
    .sort((a, b) => a - b);
  const page = numbers.slice(0, max);
  const truncated = numbers.length > page.length;
  const parts = await Promise.all(
    page.map(async (n) => {
      const [stat, md5] = await Promise.all([fs.stat(path.join(uploadDir, String(n))), fs.readFile(path.join(uploadDir, `${n}.md5`), 'utf8')]);
      return `<Part><PartNumber>${n}</PartNumber><LastModified>${stat.mtime.toISOString()}</LastModified><ETag>"${md5}"</ETag><Size>${stat.size}</Size></Part>`;
    }),
  );
  sendXml(
    res,
    200,
    `<ListPartsResult xmlns="${XMLNS}"><Bucket>${escape(bucket)}</Bucket><Key>${escape(key)}</Key><UploadId>${escape(uploadId)}</UploadId>` +
      `<PartNumberMarker>${marker}</PartNumberMarker>` +
      (truncated ? `<NextPartNumberMarker>${page[page.length - 1]}</NextPartNumberMarker>` : '') +
      `<MaxParts>${max}</MaxParts><IsTruncated>${truncated}</IsTruncated>${parts.join('')}</ListPartsResult>`,
  );
}

main().catch((err) => {
  process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
