'use strict';
// Runs s3rver in its own process for test/helpers/s3server.ts: `node --openssl-legacy-provider
// s3rver-process.js <directory> <bucket>`. s3rver encrypts ListObjectsV2 continuation tokens with
// DES, which Node 17+ only has with the legacy OpenSSL provider: without it every truncated
// listing fails with InternalError. Prints `{"port":N}` once listening; exits when stdin closes,
// so it never outlives the test process.
const fs = require('node:fs/promises');
const http = require('node:http');
const path = require('node:path');
const S3rver = require('s3rver');

/** s3rver's directory of in-progress multipart uploads inside a bucket. */
const UPLOADS_DIR = '._S3rver_uploads';

async function main() {
  const [directory, bucket] = process.argv.slice(2);
  const s3rver = new S3rver({ directory, silent: true, configureBuckets: [{ name: bucket, configs: [] }] });
  await s3rver.configureBuckets();
  const handle = s3rver.callback();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost');
    const uploadId = url.searchParams.get('uploadId');
    if (req.method === 'DELETE' && uploadId !== null) {
      // s3rver answers AbortMultipartUpload with 405 and keeps the parts; answer it the way S3
      // does, on s3rver's own layout (`<bucket>/._S3rver_uploads/<uploadId>/`). Path-style only.
      const requestBucket = path.basename(decodeURIComponent(url.pathname.split('/')[1]));
      const uploadDir = path.join(directory, requestBucket, UPLOADS_DIR, path.basename(uploadId));
      abortUpload(uploadDir, res).catch((err) => res.destroy(err));
    } else {
      handle(req, res);
    }
  });
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
  });
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

async function abortUpload(uploadDir, res) {
  const exists = await fs.stat(uploadDir).then(() => true, () => false);
  if (!exists) {
    res.writeHead(404, { 'content-type': 'application/xml' });
    res.end('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message></Error>');
    return;
  }
  await fs.rm(uploadDir, { recursive: true, force: true });
  res.writeHead(204);
  res.end();
}

main().catch((err) => {
  process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
