import { createHash } from 'node:crypto';
import { Router } from 'express';
import { z } from 'zod';
import { packageVersion } from '../package-version';
import {
  componentSchemas,
  completeUploadRequest,
  directUploadRequest,
  downloadLinkRequest,
  errorResponse,
  fileUpdateRequest,
  ownerHeader,
  pageLinkRequest,
  pageQuerySchema,
  partUrlsQuery,
  reportRequest,
  uploadForm,
  uploadLinkRequest,
} from './schemas';

/**
 * The OpenAPI 3.1 document of the API, served at `GET /v1/openapi.json`. Schemas come from
 * ./schemas.ts (zod 4's JSON Schema output, which is JSON Schema 2020-12, OpenAPI 3.1's dialect);
 * the operations are the table below. test/api/openapi.test.ts checks the document with an
 * OpenAPI validator and against the routes the app really registers, both ways.
 */

type JsonSchema = Record<string, unknown>;
type Method = 'get' | 'head' | 'options' | 'post' | 'put' | 'patch' | 'delete';

interface ResponseSpec {
  description: string;
  /** A JSON body of this schema. */
  json?: z.ZodType;
  /** Any other body, as OpenAPI `content`. */
  content?: Record<string, { schema?: JsonSchema }>;
  /** A `text/html` body (besides any JSON one) with this description: for a browser that navigated here. */
  html?: string;
  headers?: Record<string, { description: string; schema: JsonSchema }>;
}

interface OperationSpec {
  operationId: string;
  summary: string;
  description?: string;
  tag: 'files' | 'uploads' | 'links' | 'reports' | 'tasks' | 'webhooks' | 'operations' | 'meta';
  /** Scoped to the `X-Owner` header's owner (every /v1 route but this document). */
  owned: boolean;
  query?: z.ZodObject;
  /** Request headers, besides X-Owner. */
  headers?: { name: string; description: string }[];
  body?: { json: z.ZodType } | { multipart: z.ZodType };
  /** A status's response, or for an error status the error codes it carries (the Error shape). */
  responses: Record<string, ResponseSpec | string>;
  security?: Record<string, string[]>[];
}

const JSON_TYPE = 'application/json';
const ID_DESCRIPTIONS: Record<string, string> = {
  '/v1/files/{id}': 'The file id (32 hex digits).',
  '/v1/files/{id}/content': 'The file id (32 hex digits).',
  '/v1/uploads/{id}': 'The file id of the direct upload (`file.id` of its POST /v1/uploads answer).',
  '/v1/uploads/{id}/parts': 'The file id of the direct upload (`file.id` of its POST /v1/uploads answer).',
  '/v1/uploads/{id}/complete': 'The file id of the direct upload (`file.id` of its POST /v1/uploads answer).',
  '/v1/tus/{id}': 'The upload\'s id, the last segment of its `Location`: the id of the file it becomes.',
  '/v1/tasks/{id}': 'The task id (32 hex digits).',
  '/v1/tasks/{id}/events': 'The task id (32 hex digits).',
  '/v1/files/{id}/links': 'The file id (32 hex digits).',
  '/v1/links/{token}': 'The signed token of the link (`url` of POST /v1/files/{id}/links ends with it).',
  '/v1/upload-links/{token}': 'The signed token of the upload link (`url` of POST /v1/upload-links ends with it).',
  '/v1/page-links/{token}': 'The signed token of the page link (`url` of POST /v1/page-links ends with it).',
};

const WAIT_MAX_S = 25;
const waitQuery = z.object({
  wait: z
    .number()
    .min(0)
    .max(WAIT_MAX_S)
    .optional()
    .meta({
      description: `Seconds to wait for the report to be built (0-${WAIT_MAX_S}). Done in time: 201 with the finished task; else 202 as without it.`,
    }),
});

const contentHeaders = {
  ETag: { description: 'The file\'s sha256 (or id) in quotes; send it back in If-None-Match or If-Range.', schema: { type: 'string' } },
  'Last-Modified': { description: 'When the record last changed.', schema: { type: 'string' } },
  'Accept-Ranges': { description: 'Always `bytes`.', schema: { type: 'string', const: 'bytes' } },
  'Content-Length': { description: 'Bytes in this response\'s body (of the range, for a 206).', schema: { type: 'integer', minimum: 0 } },
  'Content-Disposition': { description: 'attachment, with the file\'s name.', schema: { type: 'string' } },
};
const rangeHeaders = [
  { name: 'Range', description: 'One byte range, e.g. `bytes=0-1023` or `bytes=-500`; several ranges are answered with the whole file.' },
  { name: 'If-Range', description: 'An ETag: the range is honoured only if the file still has it.' },
  { name: 'If-None-Match', description: 'An ETag: 304 when it still matches.' },
  { name: 'If-Modified-Since', description: 'A date: 304 when the file has not changed since.' },
];
const bytes = { '*/*': { schema: { description: 'The file\'s bytes, with its Content-Type.' } } };
const contentResponses = (body: boolean): Record<string, ResponseSpec | string> => ({
  '200': { description: body ? 'The whole file.' : 'The whole file\'s headers, no body.', headers: contentHeaders, ...(body && { content: bytes }) },
  '206': {
    description: body ? 'The requested range.' : 'The requested range\'s headers, no body.',
    headers: { ...contentHeaders, 'Content-Range': { description: 'e.g. `bytes 0-1023/4096`.', schema: { type: 'string' } } },
    ...(body && { content: bytes }),
  },
  '302': {
    description: 'With DOWNLOAD_MODE=redirect on an object store: a presigned URL of the bucket, which answers ranges itself.',
    headers: { Location: { description: 'The presigned URL; it expires.', schema: { type: 'string' } } },
  },
  '304': { description: 'Not modified (If-None-Match or If-Modified-Since).' },
  '404': '`not_found`: no such file of this owner; `file_missing`: its bytes are gone from storage (re-upload it).',
  '409': '`file_pending`: still being uploaded. On Fly.io, `file_elsewhere`: the file is on another Machine this request could not be replayed to.',
  '410': '`file_expired`: the file is past its `expiresAt` and being deleted.',
  '416': '`range_not_satisfiable`: the range is outside the file (Content-Range: `bytes */SIZE` tells its size).',
});

const listQueryErrors = '`invalid_limit`, `invalid_cursor`';

const LINK_INVALID = '`link_invalid`: the token was changed or cut short, or signed with a key this server no longer has.';
const LINK_EXPIRED = '`link_expired`: the link is past its expiry.';
const LINK_REQUEST_INVALID = '`invalid_link_request`: the message names each problem (e.g. `expiresIn` over 7 days, limits over the server\'s).';
const OWNER_NOT_ALLOWED = '`owner_not_allowed`: `owner` names another owner and the caller is not a service key. `insufficient_scope`: needs a write key.';
const sessionCookie = {
  'Set-Cookie': { description: '`stowage_session=...; Path=/; HttpOnly; SameSite=Strict` (and `Secure` over https): the page session, signed with SECRET_KEY, until the link\'s expiry.', schema: { type: 'string' } },
};
const linkContentResponses = (body: boolean): Record<string, ResponseSpec | string> => ({
  ...contentResponses(body),
  '302': {
    description: 'With DOWNLOAD_MODE=redirect on an object store: a presigned URL of the bucket that expires no later than the link.',
    headers: { Location: { description: 'The presigned URL.', schema: { type: 'string' } } },
  },
  '403': LINK_INVALID,
  '404': '`not_found`: the file has been deleted; `file_missing`: its bytes are gone from storage.',
  '410': `${LINK_EXPIRED} \`file_expired\`: the file is past its \`expiresAt\`.`,
});

/** Every API operation, by path and method. Paths are Express paths with `:id` written `{id}`. */
const operations: Record<string, Partial<Record<Method, OperationSpec>>> = {
  '/healthz': {
    get: {
      operationId: 'health',
      summary: 'Liveness: the process answers',
      tag: 'operations',
      owned: false,
      responses: { '200': { description: 'Alive.', json: componentSchemas.Health } },
    },
  },
  '/readyz': {
    get: {
      operationId: 'ready',
      summary: 'Readiness: the store (as last checked) and the database work',
      description:
        'Answers from the latest store check (refreshed in the background every STORE_CHECK_INTERVAL, never by this request) and one database query. Also says whether a task worker runs, without failing on it.',
      tag: 'operations',
      owned: false,
      responses: {
        '200': { description: 'Ready (even with no task worker: see `checks.workers`).', json: componentSchemas.Ready },
        '503': '`not_ready`: the message names what failed (store, database).',
      },
    },
  },
  '/metrics': {
    get: {
      operationId: 'metrics',
      summary: 'Prometheus metrics',
      description: 'In the Prometheus text format. When the server has METRICS_TOKEN set, it needs `Authorization: Bearer <token>`.',
      tag: 'operations',
      owned: false,
      security: [{}, { metricsToken: [] }],
      responses: {
        '200': { description: 'The metrics.', content: { 'text/plain': { schema: { type: 'string' } } } },
        '401': '`unauthorized`: METRICS_TOKEN is set and the request did not carry it.',
      },
    },
  },
  '/v1/openapi.json': {
    get: {
      operationId: 'openapi',
      summary: 'This document',
      description: 'The API\'s OpenAPI 3.1 description. No X-Owner needed. It has an ETag; revalidate with If-None-Match.',
      tag: 'meta',
      owned: false,
      responses: {
        '200': { description: 'The OpenAPI document.', content: { [JSON_TYPE]: { schema: { type: 'object' } } } },
        '304': { description: 'Not modified (If-None-Match).' },
      },
    },
  },
  '/v1/files': {
    post: {
      operationId: 'uploadFiles',
      summary: 'Upload files',
      description:
        'multipart/form-data with one or more `file` parts. Each part streams into the store; the files are recorded together once every part is stored, so a request adds all its files or none. Limits (MAX_UPLOAD_BYTES, MAX_FILES_PER_REQUEST, ALLOWED_CONTENT_TYPES) are the server\'s configuration.',
      tag: 'files',
      owned: true,
      headers: [{ name: 'Stowage-Expires-In', description: 'How long the files are kept once uploaded (`"90s"`, `"12h"`, `"7d"`), as the form field `expiresIn`.' }],
      body: { multipart: uploadForm },
      responses: {
        '201': { description: 'Every file of the form, stored.', json: componentSchemas.UploadedFiles },
        '400': '`no_files`, `unexpected_field` (a file part not named `file`), `malformed_multipart`, `invalid_expires_in`.',
        '408': '`body_timeout`: no byte of the body arrived for the server\'s BODY_IDLE_TIMEOUT; nothing was kept and the connection is closed.',
        '409': '`upload_cancelled`: the file\'s record was removed while it was being uploaded; nothing was kept.',
        '413': '`file_too_large`, `too_many_files`, `quota_exceeded` (refused before the body is read when the request\'s length does not fit).',
        '415': '`multipart_required`, `unsupported_file_type`.',
        '503': {
          description:
            '`busy`: this client (UPLOADS_PER_CLIENT) or the server (UPLOADS_MAX) has as many uploads in progress as it takes; refused before the body is read, with `Retry-After`, and the connection is closed. Also `store_unavailable`, and `database_unavailable` (with `Retry-After`).',
          json: errorResponse,
          headers: { 'Retry-After': { description: 'Seconds to wait before trying again.', schema: { type: 'integer' } } },
        },
      },
    },
    get: {
      operationId: 'listFiles',
      summary: 'List files, newest first',
      tag: 'files',
      owned: true,
      query: pageQuerySchema,
      responses: {
        '200': { description: 'One page of files.', json: componentSchemas.FileList },
        '400': listQueryErrors,
      },
    },
  },
  '/v1/files/{id}': {
    get: {
      operationId: 'getFile',
      summary: 'A file\'s record',
      tag: 'files',
      owned: true,
      description: 'An expired file (`status: "expired"`) is shown until the sweep removes it; then 404.',
      responses: {
        '200': { description: 'The record.', json: componentSchemas.File },
        '404': '`not_found`: no such file of this owner.',
      },
    },
    patch: {
      operationId: 'updateFile',
      summary: 'Rename a file, set its metadata or when it expires',
      description: 'Changes only what the body names; answers the changed record.',
      tag: 'files',
      owned: true,
      body: { json: fileUpdateRequest },
      responses: {
        '200': { description: 'The changed record.', json: componentSchemas.File },
        '400': '`invalid_file_update`: the body is not a change this endpoint takes (each problem named).',
        '404': '`not_found`: no such file of this owner.',
        '409': '`file_pending` (still being uploaded), `file_expired` (being deleted), `file_not_ready` (missing or failed): only a ready file can be changed.',
        '413': '`metadata_too_large`: more than 32 keys or 4096 bytes of metadata.',
      },
    },
    delete: {
      operationId: 'deleteFile',
      summary: 'Delete a file, record and bytes',
      tag: 'files',
      owned: true,
      responses: {
        '204': { description: 'Deleted.' },
        '404': '`not_found`: no such file of this owner.',
        '409': '`file_pending`: the file is still being uploaded (delete it once it is ready). On Fly.io, `file_elsewhere`: the file is on another Machine this request could not be replayed to.',
      },
    },
  },
  '/v1/files/{id}/content': {
    get: {
      operationId: 'downloadFile',
      summary: 'Download a file\'s bytes',
      description: 'Streams the bytes with the Content-Type they were uploaded with, as an attachment. Supports one byte range and conditional requests.',
      tag: 'files',
      owned: true,
      headers: rangeHeaders,
      responses: contentResponses(true),
    },
    head: {
      operationId: 'headFile',
      summary: 'A download\'s headers, without the bytes',
      description: 'As GET, without a body; also checks that the bytes are still in storage.',
      tag: 'files',
      owned: true,
      headers: rangeHeaders,
      responses: contentResponses(false),
    },
  },
  '/v1/uploads': {
    post: {
      operationId: 'createDirectUpload',
      summary: 'Start a direct upload to the object store',
      description:
        'For large files on an S3 store: declares the file and answers a presigned URL to PUT its bytes to, then POST `links.complete`. With `multipart: true`, or past 5 GiB, it goes up in parts instead (`upload.method: "multipart"`, S3 multipart): PUT each part to its URL, keep each answer\'s ETag, and complete with them. A pending upload not completed in time is swept, its parts aborted.',
      tag: 'uploads',
      owned: true,
      body: { json: directUploadRequest },
      responses: {
        '201': { description: 'The pending file and where to upload its bytes.', json: componentSchemas.DirectUpload },
        '400': '`invalid_json`.',
        '409': '`direct_upload_unsupported`: the server\'s store cannot presign (use POST /v1/files).',
        '413': '`file_too_large` (the declared size), `quota_exceeded` (the declared size past the owner\'s quota), `payload_too_large` (the JSON body).',
        '415': '`unsupported_file_type`.',
        '422': '`invalid_upload_request`: the message names each problem.',
      },
    },
  },
  '/v1/uploads/{id}': {
    delete: {
      operationId: 'cancelDirectUpload',
      summary: 'Give a direct upload up',
      description: 'Removes a pending direct upload: its parts are aborted, its object and record removed.',
      tag: 'uploads',
      owned: true,
      responses: {
        '204': { description: 'Cancelled: nothing of it is left.' },
        '404': '`not_found`: no such upload of this owner.',
        '409': '`upload_completed`, `upload_failed`: it is a file record now (DELETE /v1/files/{id}).',
      },
    },
  },
  '/v1/uploads/{id}/parts': {
    get: {
      operationId: 'directUploadParts',
      summary: 'More part URLs of a direct upload in parts',
      description: 'Presigns up to 100 part URLs from part `from` on (fresh ones, also to replace expired URLs).',
      tag: 'uploads',
      owned: true,
      query: partUrlsQuery,
      responses: {
        '200': { description: 'A batch of part URLs.', json: componentSchemas.PartUrls },
        '404': '`not_found`: no such upload of this owner.',
        '409': '`not_a_multipart_upload`, `upload_expired`, `upload_failed`, `not_a_direct_upload`.',
        '422': '`invalid_upload_request`: `from` is not a part number of the upload.',
      },
    },
  },
  '/v1/uploads/{id}/complete': {
    post: {
      operationId: 'completeDirectUpload',
      summary: 'Finish a direct upload',
      description:
        'Checks the uploaded object (its size, and its sha256 if one was declared) and makes the file ready. An upload in parts sends every part with the ETag its PUT answered; stowage checks them against the parts the store holds, has the store assemble the object, then checks it. Completing a ready file answers it again.',
      tag: 'uploads',
      owned: true,
      body: { json: completeUploadRequest },
      responses: {
        '200': { description: 'The file, now ready.', json: componentSchemas.File },
        '404': '`not_found`: no such upload of this owner.',
        '409': '`upload_incomplete` (nothing PUT yet, or a part missing; it stays pending), `upload_expired`, `upload_failed`, `not_a_direct_upload`.',
        '422':
          '`upload_verification_failed`: the bytes do not match the declared size or sha256; the upload is failed. `upload_part_mismatch`: a part\'s ETag is not the one the store holds, `parts_required`, `invalid_upload_request`: the parts list is not parts 1 to `partCount` in order; these leave it pending.',
      },
    },
  },
  '/v1/tus': {
    options: {
      operationId: 'tusOptions',
      summary: 'What the resumable upload server supports (tus)',
      description: 'tus 1.0: answers `Tus-Version`, `Tus-Extension` (creation, creation-with-upload, termination, expiration, checksum) and `Tus-Checksum-Algorithm`.',
      tag: 'uploads',
      owned: false,
      security: [{}],
      responses: { '204': { description: 'The tus headers, no body.' } },
    },
    post: {
      operationId: 'tusCreate',
      summary: 'Create a resumable upload (tus)',
      description:
        'tus creation (and creation-with-upload): `Upload-Length` is required, `Upload-Metadata` may carry `filename` and `filetype`. The `Location` answered is the upload URL; its last segment is the id of the file it becomes. Size limits and allowed types are checked here, before any byte is stored.',
      tag: 'uploads',
      owned: true,
      headers: [
        { name: 'Tus-Resumable', description: '`1.0.0`.' },
        { name: 'Upload-Length', description: 'The file\'s size in bytes.' },
        { name: 'Upload-Metadata', description: 'tus metadata: `filename <base64>,filetype <base64>`, and `expiresIn <base64>` (the file\'s lifetime once finished, e.g. `7d`).' },
        { name: 'Stowage-Expires-In', description: 'The file\'s lifetime once finished (`"90s"`, `"12h"`, `"7d"`), when the metadata has no `expiresIn`.' },
      ],
      responses: {
        '201': {
          description: 'Created; `Location` is the upload URL.',
          headers: {
            Location: { description: 'The upload URL.', schema: { type: 'string' } },
            'Stowage-Machine': { description: 'On Fly volumes: the Machine that holds the upload (every answer about it names it).', schema: { type: 'string' } },
          },
        },
        '400': '`upload_length_required`, `bad_upload_metadata`, `invalid_expires_in`.',
        '413': '`file_too_large`, `quota_exceeded` (Upload-Length past the owner\'s quota).',
        '415': '`unsupported_file_type`.',
      },
    },
  },
  '/v1/tus/{id}': {
    head: {
      operationId: 'tusOffset',
      summary: 'How much of a resumable upload the server has (tus)',
      description: '`Upload-Offset` and `Upload-Length`. A finished upload answers its full size; the file is then a ready record.',
      tag: 'uploads',
      owned: true,
      headers: [{ name: 'Tus-Resumable', description: '`1.0.0`.' }],
      responses: { '200': { description: 'The offset, no body.' }, '404': '`not_found`: no unfinished or finished upload of this owner with that id.' },
    },
    patch: {
      operationId: 'tusPatch',
      summary: 'Send the next chunk of a resumable upload (tus)',
      description:
        'Body `application/offset+octet-stream` from `Upload-Offset`. With `Upload-Checksum: sha256 <base64>` a chunk that doesn\'t match is refused with 460 and the offset doesn\'t move. The last chunk makes the file ready.',
      tag: 'uploads',
      owned: true,
      headers: [
        { name: 'Tus-Resumable', description: '`1.0.0`.' },
        { name: 'Upload-Offset', description: 'Where this chunk starts (the offset HEAD answered).' },
        { name: 'Upload-Checksum', description: 'Optional: `sha256 <base64 digest of this chunk>`.' },
        { name: 'fly-force-instance-id', description: 'On Fly volumes: the Machine the answers named (`Stowage-Machine`), so Fly\'s proxy sends the chunk there.' },
      ],
      responses: {
        '204': { description: 'Stored; `Upload-Offset` is the new offset.' },
        '404': '`not_found`: no unfinished upload of this owner with that id.',
        '409': '`upload_finished`, or (tus) the offset is not the server\'s.',
        '421': '`upload_elsewhere`: on Fly volumes, the upload is on another Machine (named in `Stowage-Machine`) and the chunk is too large for Fly\'s proxy to replay; nothing was read. Send it with `fly-force-instance-id: <that id>`.',
        '423': 'tus: another instance is writing this upload now; try again once it has finished.',
        '460': 'tus: checksum mismatch.',
      },
    },
    delete: {
      operationId: 'tusTerminate',
      summary: 'Cancel an unfinished resumable upload (tus termination)',
      tag: 'uploads',
      owned: true,
      headers: [{ name: 'Tus-Resumable', description: '`1.0.0`.' }],
      responses: { '204': { description: 'The upload and its bytes are gone.' }, '404': '`not_found`.', '409': '`upload_finished`: delete the file instead.' },
    },
  },
  '/v1/files/{id}/links': {
    post: {
      operationId: 'createDownloadLink',
      summary: 'A download link for people without credentials',
      description:
        'A URL anyone may GET until `expiresIn` has passed (at most 7 days), signed with the server\'s SECRET_KEY (HMAC-SHA256 over the file id, owner, expiry and disposition). It answers like `/v1/files/{id}/content` (ranges, conditional requests, redirect mode) and stops working once the file is deleted. Links are not stored: they can\'t be revoked one by one (rotating SECRET_KEY ends them all). The JSON body may be left out (a one-hour attachment link).',
      tag: 'links',
      owned: true,
      body: { json: downloadLinkRequest },
      responses: {
        '201': { description: 'The link.', json: componentSchemas.Link },
        '403': '`insufficient_scope`: needs a write key.',
        '404': '`not_found`: no such file of this owner (another owner\'s file answers the same).',
        '422': LINK_REQUEST_INVALID,
      },
    },
  },
  '/v1/links/{token}': {
    get: {
      operationId: 'downloadByLink',
      summary: 'Download a file through a download link (no credentials)',
      description:
        'The file\'s bytes, as `/v1/files/{id}/content` sends them, with `Content-Security-Policy: sandbox` and `Referrer-Policy: no-referrer`. `Content-Disposition` is `inline` only when the link asked for it and the type is safe to show (PNG, JPEG, GIF, WebP, AVIF, BMP, PDF, plain text); anything else is an attachment. A browser that navigated here gets an HTML page for an error.',
      tag: 'links',
      owned: false,
      headers: rangeHeaders,
      responses: linkContentResponses(true),
    },
    head: {
      operationId: 'headByLink',
      summary: 'A download link\'s headers, without the bytes',
      tag: 'links',
      owned: false,
      headers: rangeHeaders,
      responses: linkContentResponses(false),
    },
  },
  '/v1/upload-links': {
    post: {
      operationId: 'createUploadLink',
      summary: 'An upload link for people without credentials',
      description:
        'Like an S3 presigned POST, for any store: a URL a browser form (or any client) may POST multipart/form-data to, without credentials, within the limits given, until it expires (at most 7 days). The limits apply to each request; the link may be used again until it expires. Opening the same URL with GET shows the upload page for it. A service key may name any `owner`; a write key only its own.',
      tag: 'links',
      owned: true,
      body: { json: uploadLinkRequest },
      responses: {
        '201': { description: 'The link.', json: componentSchemas.UploadLink },
        '403': OWNER_NOT_ALLOWED,
        '422': LINK_REQUEST_INVALID,
      },
    },
  },
  '/v1/upload-links/{token}': {
    get: {
      operationId: 'openUploadPage',
      summary: 'Open the upload page of an upload link (no credentials)',
      description:
        'Sets the page session cookie (uploads only, within the link\'s limits, until it expires) and moves on to `/`. The page then shows the upload form, never the owner\'s other files.',
      tag: 'links',
      owned: false,
      responses: {
        '200': { description: 'A page that moves on to `/` at once.', headers: sessionCookie, content: { 'text/html': {} } },
        '403': LINK_INVALID,
        '410': LINK_EXPIRED,
      },
    },
    post: {
      operationId: 'uploadByLink',
      summary: 'Upload files through an upload link (no credentials)',
      description:
        'As POST /v1/files, within the link\'s limits, for the link\'s owner. Allowed from any origin (`Access-Control-Allow-Origin: *`; no cookies are involved). A browser form that navigated here gets an HTML page saying what was stored (or why not).',
      tag: 'links',
      owned: false,
      body: { multipart: uploadForm },
      responses: {
        '201': { description: 'Every file of the form, stored.', json: componentSchemas.UploadedFiles, html: 'For a browser: a page listing what was stored.' },
        '400': '`no_files`, `unexpected_field`, `malformed_multipart`.',
        '403': LINK_INVALID,
        '410': LINK_EXPIRED,
        '413': '`file_too_large`, `too_many_files`: over the link\'s (or the server\'s) limits; `quota_exceeded`: past the owner\'s quota.',
        '415': '`multipart_required`, `unsupported_file_type`: a type the link (or the server) does not accept.',
      },
    },
  },
  '/v1/page-links': {
    post: {
      operationId: 'createPageLink',
      summary: 'A link that opens the page with a session',
      description:
        'For an app to send its user to the page: the URL sets a session cookie for the owner (default 8 hours, at most 7 days) and opens `/`. A service key may name any `owner`; a write key only its own. Operators can make one with `stowage links page --owner NAME`.',
      tag: 'links',
      owned: true,
      body: { json: pageLinkRequest },
      responses: {
        '201': { description: 'The link.', json: componentSchemas.Link },
        '403': OWNER_NOT_ALLOWED,
        '422': LINK_REQUEST_INVALID,
      },
    },
  },
  '/v1/page-links/{token}': {
    get: {
      operationId: 'openPage',
      summary: 'Open the page through a page link (no credentials)',
      description: 'Sets the page session cookie for the link\'s owner, until the link\'s expiry, and moves on to `/`.',
      tag: 'links',
      owned: false,
      responses: {
        '200': { description: 'A page that moves on to `/` at once.', headers: sessionCookie, content: { 'text/html': {} } },
        '403': LINK_INVALID,
        '410': LINK_EXPIRED,
      },
    },
  },
  '/v1/reports': {
    post: {
      operationId: 'createReport',
      summary: 'Build a report (xlsx, pdf or csv)',
      description:
        'Queues a `report` task from inline `columns` and `rows`, from an uploaded spreadsheet (`source`), or from several such tables (`sheets`). Answers 202 with the task and its Location; follow it with GET /v1/tasks/{id} or its events.',
      tag: 'reports',
      owned: true,
      query: waitQuery,
      body: { json: reportRequest },
      responses: {
        '201': {
          description: 'With `wait`: the report was built in time; the task lists it in `outputs`.',
          json: componentSchemas.Task,
          headers: { Location: { description: 'The task, `/v1/tasks/{id}`.', schema: { type: 'string' } } },
        },
        '202': {
          description: 'The report task, queued (or still running after `wait`).',
          json: componentSchemas.Task,
          headers: { Location: { description: 'The task, `/v1/tasks/{id}`.', schema: { type: 'string' } } },
        },
        '400': '`invalid_wait`, `invalid_json`.',
        '404': '`source_not_found`: no file of this owner with a `source.fileId`; `logo_not_found`: none with `options.logo.fileId`.',
        '413': '`payload_too_large`: the JSON body is over the server\'s REPORT_MAX_BODY_BYTES.',
        '415': '`json_required`.',
        '422': '`invalid_report`: the message names each problem by path, e.g. `rows[3].amount: expected a number` or `sheets[1].rows[3].amount: ...`; `logo_rejected`: the logo file is over 2 MB.',
      },
    },
  },
  '/v1/webhooks/deliveries': {
    get: {
      operationId: 'listWebhookDeliveries',
      summary: 'List webhook deliveries, newest first',
      description:
        'One delivery per event and endpoint (WEBHOOK_URL, and the owner\'s endpoints from `stowage webhooks add`), with its status, attempts and last error. A delivery that keeps failing is given up after WEBHOOK_GIVE_UP.',
      tag: 'webhooks',
      owned: true,
      query: pageQuerySchema,
      responses: {
        '200': { description: 'One page of deliveries.', json: componentSchemas.WebhookDeliveryList },
        '400': listQueryErrors,
      },
    },
  },
  '/v1/tasks': {
    get: {
      operationId: 'listTasks',
      summary: 'List tasks, newest first',
      tag: 'tasks',
      owned: true,
      query: pageQuerySchema,
      responses: {
        '200': { description: 'One page of tasks.', json: componentSchemas.TaskList },
        '400': listQueryErrors,
      },
    },
  },
  '/v1/tasks/{id}': {
    get: {
      operationId: 'getTask',
      summary: 'A task',
      tag: 'tasks',
      owned: true,
      responses: {
        '200': { description: 'The task.', json: componentSchemas.Task },
        '404': '`not_found`: no such task of this owner.',
      },
    },
    delete: {
      operationId: 'cancelTask',
      summary: 'Cancel a task',
      tag: 'tasks',
      owned: true,
      responses: {
        '200': { description: 'The task, cancelled.', json: componentSchemas.Task },
        '404': '`not_found`: no such task of this owner.',
        '409': '`task_finished`: it already succeeded, failed or was cancelled.',
      },
    },
  },
  '/v1/tasks/{id}/events': {
    get: {
      operationId: 'taskEvents',
      summary: 'Follow a task as server-sent events',
      description:
        'A `text/event-stream`: a `progress` event whenever the task changes, then one `done` event with its final state, after which the stream ends (at once for a task already finished). Each event\'s `data` is the task as JSON (the Task schema). Comment lines keep the connection alive.',
      tag: 'tasks',
      owned: true,
      responses: {
        '200': {
          description: 'The event stream.',
          content: {
            'text/event-stream': {
              schema: { type: 'string', description: 'Events `progress` and `done`, each with `data:` a Task as JSON.' },
            },
          },
        },
        '404': '`not_found`: no such task of this owner.',
      },
    },
  },
  '/v1/usage': {
    get: {
      operationId: 'getUsage',
      summary: 'What the owner\'s files take, and its quota',
      description: 'Summed from the catalog. Uploads past the quota are refused with 413 `quota_exceeded`.',
      tag: 'files',
      owned: true,
      responses: { '200': { description: 'The owner\'s usage.', json: componentSchemas.Usage } },
    },
  },
};

// ---------------------------------------------------------------------------------------------

const refs = new Map<z.ZodType, string>(Object.entries(componentSchemas).map(([name, schema]) => [schema as z.ZodType, name]));

/** A component's `$ref`, or the schema inline (it must not contain a component). */
function schemaOf(schema: z.ZodType): JsonSchema {
  const name = refs.get(schema);
  if (name) return { $ref: `#/components/schemas/${name}` };
  const { $schema: _dialect, ...inline } = z.toJSONSchema(schema, { io: 'input' }) as JsonSchema;
  if ('$defs' in inline) throw new Error('an inline schema must not contain components; name it in componentSchemas');
  return inline;
}

function parameter(name: string, where: 'query' | 'header' | 'path', schema: z.ZodType | JsonSchema, required: boolean) {
  const json = schema instanceof z.ZodType ? schemaOf(schema) : schema;
  const { description, ...rest } = json;
  return { name, in: where, required, ...(description !== undefined && { description }), schema: rest };
}

function response(spec: ResponseSpec | string) {
  if (typeof spec === 'string') {
    return { description: spec, content: { [JSON_TYPE]: { schema: schemaOf(errorResponse) } } };
  }
  const content = {
    ...(spec.json && { [JSON_TYPE]: { schema: schemaOf(spec.json) } }),
    ...(spec.html && { 'text/html': { schema: { type: 'string', description: spec.html } } }),
    ...spec.content,
  };
  return {
    description: spec.description,
    ...(spec.headers && { headers: spec.headers }),
    ...(Object.keys(content).length > 0 && { content }),
  };
}

function operation(route: string, spec: OperationSpec) {
  const parameters = [
    ...[...route.matchAll(/\{(\w+)\}/g)].map(([, name]) =>
      parameter(name, 'path', { type: 'string', description: ID_DESCRIPTIONS[route] ?? name }, true),
    ),
    ...Object.entries(spec.query?.shape ?? {}).map(([name, schema]) =>
      parameter(name, 'query', schema as z.ZodType, !(schema as z.ZodType).safeParse(undefined).success),
    ),
    ...(spec.owned ? [{ $ref: '#/components/parameters/Owner' }] : []),
    ...(spec.headers ?? []).map((h) => parameter(h.name, 'header', { type: 'string', description: h.description }, false)),
  ];
  const responses: Record<string, unknown> = {};
  for (const [status, r] of Object.entries(spec.responses)) responses[status] = response(r);
  if (spec.owned) {
    const invalidOwner = '`invalid_owner`: X-Owner is malformed.';
    const given = spec.responses['400'];
    if (given !== undefined && typeof given !== 'string') throw new Error(`${spec.operationId}: a 400 must be an error`);
    responses['400'] = response(given ? `${given} ${invalidOwner}` : invalidOwner);
  }
  responses.default = response('Any other error in the one error shape, e.g. 500 `internal_error`, 503 `store_unavailable` or `database_unavailable` (with `Retry-After`), 507 `insufficient_storage`.');
  const ordered = Object.fromEntries(Object.entries(responses).sort(([a], [b]) => a.localeCompare(b)));
  return {
    operationId: spec.operationId,
    summary: spec.summary,
    ...(spec.description && { description: spec.description }),
    tags: [spec.tag],
    ...(parameters.length > 0 && { parameters }),
    ...(spec.body && {
      requestBody: {
        required: true,
        content:
          'json' in spec.body
            ? { [JSON_TYPE]: { schema: schemaOf(spec.body.json) } }
            : { 'multipart/form-data': { schema: schemaOf(spec.body.multipart) } },
      },
    }),
    responses: ordered,
    ...(spec.security && { security: spec.security }),
  };
}

/** The component schemas, each a JSON Schema with `$ref`s to the others. */
function components(): Record<string, JsonSchema> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(componentSchemas)) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, {
    io: 'input',
    uri: (id) => `#/components/schemas/${id}`,
    override({ zodSchema, jsonSchema }) {
      // reports/spec.ts checks this in a refinement, which JSON Schema output leaves out.
      if (zodSchema === reportRequest) {
        jsonSchema.oneOf = [
          { required: ['source'], not: { anyOf: [{ required: ['columns'] }, { required: ['rows'] }, { required: ['sheets'] }] } },
          { required: ['columns', 'rows'], not: { anyOf: [{ required: ['source'] }, { required: ['sheets'] }] } },
          { required: ['sheets'], not: { anyOf: [{ required: ['source'] }, { required: ['columns'] }, { required: ['rows'] }] } },
        ];
      }
    },
  });
  const out: Record<string, JsonSchema> = {};
  for (const [id, { $schema: _dialect, $id: _id, ...schema }] of Object.entries(schemas)) out[id] = schema;
  out.ReportRequest.description =
    'Give `columns` and `rows` (inline data), or `source` (an uploaded CSV or xlsx file), or `sheets` (several tables, each one or the other; xlsx and pdf only).';
  out.Timestamp.description = 'ISO 8601 in UTC with milliseconds, e.g. `2025-01-31T09:30:00.000Z`.';
  return out;
}

export function buildOpenApiDocument() {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const [route, methods] of Object.entries(operations)) {
    paths[route] = {};
    for (const [method, spec] of Object.entries(methods)) paths[route][method] = operation(route, spec);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'stowage',
      version: packageVersion(),
      description:
        'A REST service that web apps hand their files and reports to. Every failed request answers `{"error":{"code","message","requestId"}}` with a stable `code`; every response carries X-Request-Id. Until access control lands, a request names its owner with `X-Owner` (default `anonymous`).',
      license: { name: 'MIT', identifier: 'MIT' },
    },
    tags: [
      { name: 'files', description: 'Upload, list, download and delete files.' },
      { name: 'uploads', description: 'Direct uploads: large files straight to the object store.' },
      { name: 'links', description: 'Signed links for people without credentials: download, upload and page links.' },
      { name: 'reports', description: 'Spreadsheets and PDFs built from data or an uploaded file.' },
      { name: 'tasks', description: 'Background work (reports): status, progress, outputs.' },
      { name: 'webhooks', description: 'Events sent to the endpoints the operator configured, and how their deliveries went.' },
      { name: 'operations', description: 'Health checks and metrics for the platform.' },
      { name: 'meta', description: 'This document.' },
    ],
    paths,
    components: {
      schemas: components(),
      parameters: {
        Owner: parameter('X-Owner', 'header', ownerHeader.meta({ description: 'Whose files the request may see and change; `anonymous` when absent.' }), false),
      },
      securitySchemes: {
        metricsToken: { type: 'http', scheme: 'bearer', description: 'METRICS_TOKEN, when the server sets one.' },
      },
    },
  };
}

export type OpenApiDocument = ReturnType<typeof buildOpenApiDocument>;

let built: { document: OpenApiDocument; body: string; etag: string } | undefined;

/** The document, built on first use and kept: it depends on the code alone, not on configuration. */
export function openApiDocument(): OpenApiDocument {
  return served().document;
}

function served() {
  if (!built) {
    const document = buildOpenApiDocument();
    const body = JSON.stringify(document);
    built = { document, body, etag: `"${createHash('sha256').update(body).digest('hex').slice(0, 32)}"` };
  }
  return built;
}

/** `GET /v1/openapi.json`: public (no X-Owner), revalidated with its ETag. */
export function openApiRouter(): Router {
  const router = Router();
  router.get('/v1/openapi.json', (req, res) => {
    const { body, etag } = served();
    res.setHeader('ETag', etag);
    res.setHeader('Cache-Control', 'public, no-cache');
    res.type('json');
    if (req.fresh) {
      res.status(304).end();
      return;
    }
    res.send(body);
  });
  return router;
}
