import { z } from 'zod';
import { MAX_LINK_MS } from '../auth/links';
import { parseDuration } from '../config/units';
import { OWNER } from '../http/owner';
import { NO_WORKER } from '../tasks/task';
import { bodySchema as reportRequestSchema, columnSchema, optionsSchema, sourceSchema } from '../reports/spec';

/**
 * The API's request and response shapes as zod schemas: the routes validate requests with the
 * request schemas here, and the OpenAPI document (`GET /v1/openapi.json`, see ./openapi.ts) is
 * generated from the same objects, so the two can't drift. Response schemas describe what the
 * presenters (routes/present.ts, presentTask) send; the tests check real responses against them.
 */

// ---------------------------------------------------------------------------------------------
// Requests

/** A file's lifetime as a client gives it at upload: `"90s"`, `"12h"`, `"7d"`, checked by files/lifetime.ts (400 `invalid_expires_in`). */
export const expiresIn = z
  .string()
  .meta({ description: 'How long the file is kept once uploaded: `"90s"`, `"15m"`, `"12h"`, `"7d"` (1s to 36500d); it then expires and is deleted. Absent: kept until deleted.' });

/** `POST /v1/uploads`: a direct upload's declared file. */
export const directUploadRequest = z.strictObject({
  name: z.string().min(1).max(1000),
  size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  contentType: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$/, 'must be a media type such as image/png')
    .transform((t) => t.toLowerCase()),
  sha256: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex digits')
    .transform((h) => h.toLowerCase())
    .optional(),
  multipart: z
    .boolean()
    .optional()
    .meta({
      description:
        'true: upload in parts (S3 multipart, presigned part URLs) whatever the size. false: one PUT (up to 5 GiB). Absent: one PUT up to 5 GiB, parts past it, so clients written for one PUT keep working.',
    }),
  expiresIn: expiresIn.optional(),
});

/** `POST /v1/uploads/:id/complete`: for an upload in parts, each part with the ETag its PUT answered. */
export const completeUploadRequest = z.strictObject({
  parts: z
    .array(
      z.strictObject({
        partNumber: z.number().int().min(1).max(10_000),
        etag: z.string().min(1).max(200).meta({ description: 'The `ETag` header of the part\'s PUT answer, quotes and all (or without them).' }),
      }),
    )
    .max(10_000)
    .optional()
    .meta({ description: 'Required for an upload in parts (`upload.method: "multipart"`): every part, in order. Omit for one PUT.' }),
});

/** `GET /v1/uploads/:id/parts?from=`. */
export const partUrlsQuery = z.object({
  from: z.coerce.number().int().min(1).max(10_000).default(1).meta({ description: 'The first part number to presign.' }),
});

export const DEFAULT_PAGE_LIMIT = 50;
export const MAX_PAGE_LIMIT = 200;

/** `?limit=&cursor=` of the list endpoints (http/paging.ts parses `limit` with this schema). */
export const pageQuerySchema = z.object({
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_PAGE_LIMIT)
    .default(DEFAULT_PAGE_LIMIT)
    .meta({ description: `How many items to return (1-${MAX_PAGE_LIMIT}).` }),
  cursor: z.string().optional().meta({ description: 'The `nextCursor` of the previous page; omit it for the first page.' }),
});

/** `POST /v1/reports`: the report request (validated by reports/spec.ts, which owns it). */
export const reportRequest = reportRequestSchema;

export const MAX_METADATA_KEYS = 32;
export const MAX_METADATA_BYTES = 4096;

/** `PATCH /v1/files/:id`: what to change on a ready file. */
export const fileUpdateRequest = z
  .strictObject({
    name: z.string().min(1).max(1000).optional().meta({ description: 'A new name; stored made safe as uploads\' names are (`name`), and as sent less control characters (`originalName`).' }),
    metadata: z
      .record(z.string().min(1).max(128), z.string())
      .nullable()
      .optional()
      .meta({
        description: `Custom metadata, replacing what the file had: a flat object of strings, at most ${MAX_METADATA_KEYS} keys and ${MAX_METADATA_BYTES} bytes of JSON (413 \`metadata_too_large\` past that); null removes it.`,
      }),
    expiresAt: z.iso
      .datetime({ offset: true })
      .nullable()
      .optional()
      .meta({ description: 'When the file expires and is deleted (ISO 8601); null keeps it until deleted. A time already past expires it at the next sweep.' }),
  })
  .refine((u) => u.name !== undefined || u.metadata !== undefined || u.expiresAt !== undefined, 'give at least one of name, metadata, expiresAt');

/** `POST /v1/files`: the multipart form (parsed by multer, not zod; described here for the document). */
export const uploadForm = z.object({
  file: z
    .array(z.file())
    .min(1)
    .meta({ description: 'One or more files, each in a part named `file` with its filename and Content-Type.' }),
  expiresIn: expiresIn.optional().meta({ description: 'How long the files are kept once uploaded (`"90s"`, `"12h"`, `"7d"`); send it before the files. The `Stowage-Expires-In` header does the same. Absent: kept until deleted.' }),
});

/** `X-Owner`: whose files a request may see and change (http/owner.ts checks it with this pattern). */
export const ownerHeader = z.string().regex(OWNER);

/** A media type, or a wildcard such as `image/*`, as ALLOWED_CONTENT_TYPES takes them. */
const mediaTypePattern = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*\/(\*|[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*)$/, 'must be a media type such as image/png, or image/*')
  .transform((t) => t.toLowerCase());

/** A link's lifetime: `"90s"`, `"15m"`, `"1h"`, `"7d"`, or seconds as a number; read as milliseconds. */
const linkLifetime = (fallback: string) =>
  z
    .union([z.string(), z.number().positive()])
    .default(fallback)
    .transform((v, ctx) => {
      const ms = typeof v === 'number' ? Math.round(v * 1000) : parseDuration(v);
      if (ms === undefined || ms < 1000 || ms > MAX_LINK_MS) {
        ctx.addIssue({ code: 'custom', message: 'must be a duration from 1s to 7d, such as "15m", "1h" or "7d" (or seconds as a number)' });
        return z.NEVER;
      }
      return ms;
    })
    .meta({ description: `How long the link works: \`"90s"\`, \`"15m"\`, \`"1h"\`, \`"7d"\`, or seconds as a number; at most 7 days. Default ${fallback}.` });

/** `POST /v1/files/:id/links`: a download link for people without credentials. */
export const downloadLinkRequest = z.strictObject({
  expiresIn: linkLifetime('1h'),
  disposition: z
    .enum(['attachment', 'inline'])
    .default('attachment')
    .meta({ description: '`inline` asks the browser to show the file; honoured only for images (not SVG), PDF and plain text, anything else stays `attachment`.' }),
});

/** `POST /v1/upload-links`: where people without credentials may upload files for an owner. */
export const uploadLinkRequest = z.strictObject({
  owner: ownerHeader.optional().meta({ description: 'Whose files the uploads become: only a service key may name another owner than its own.' }),
  expiresIn: linkLifetime('1h'),
  maxBytes: z.number().int().positive().optional().meta({ description: 'Largest file, in bytes (default and most: the server\'s MAX_UPLOAD_BYTES).' }),
  maxFiles: z.number().int().positive().optional().meta({ description: 'Most files per upload request (default and most: the server\'s MAX_FILES_PER_REQUEST).' }),
  fileExpiresIn: expiresIn
    .optional()
    .meta({ description: 'How long files uploaded through the link are kept (`"90s"`, `"12h"`, `"7d"`); it fixes their lifetime, whatever an upload asks. Absent: as the upload asks.' }),
  allowedTypes: z
    .array(mediaTypePattern)
    .max(20)
    .optional()
    .meta({ description: 'Types accepted, such as `image/png` or `image/*` (default: what the server accepts); each must be one the server\'s ALLOWED_CONTENT_TYPES accepts.' }),
});

/** `POST /v1/page-links`: a link that opens the page with a session for an owner. */
export const pageLinkRequest = z.strictObject({
  owner: ownerHeader.optional().meta({ description: 'Whose page: only a service key may name another owner than its own.' }),
  expiresIn: linkLifetime('8h'),
});

// ---------------------------------------------------------------------------------------------
// Responses

/** Times are ISO 8601 in UTC with milliseconds, e.g. `2025-01-31T09:30:00.000Z`. */
export const timestamp = z.iso.datetime();

export const fileStatus = z.enum(['pending', 'ready', 'missing', 'failed', 'expired']);

/** A file record as `presentFile` sends it. */
export const fileResponse = z.object({
  id: z.string(),
  name: z.string().meta({ description: 'The stored name (made safe for a download).' }),
  originalName: z.string().meta({ description: 'The name as the client sent it.' }),
  contentType: z.string(),
  size: z.number().int().min(0).meta({ description: 'Bytes; for a pending direct upload, the declared size.' }),
  sha256: z.string().nullable().meta({ description: 'Hex SHA-256 of the bytes; null until known.' }),
  status: fileStatus.meta({
    description:
      '`pending`: not yet uploaded; `ready`: downloadable; `missing`: its bytes were lost; `failed`: a direct upload that did not check out; `expired`: past `expiresAt`, being deleted (no longer listed; downloads answer 410 `file_expired`).',
  }),
  statusMessage: z.string().nullable().meta({ description: 'Why a file is missing or failed, for a person.' }),
  store: z.string().meta({ description: 'Which configured store holds the bytes.' }),
  expiresAt: timestamp.nullable().meta({ description: 'When the file expires and is deleted; null: kept until deleted. Set at upload with `expiresIn`, changed with PATCH.' }),
  metadata: z.record(z.string(), z.string()).meta({ description: 'Custom metadata set with PATCH: a flat object of strings (`{}` when none).' }),
  createdAt: timestamp,
  updatedAt: timestamp,
  links: z.object({ self: z.string(), content: z.string() }),
});

/** `GET /v1/files`. */
export const fileListResponse = z.object({
  files: z.array(fileResponse),
  nextCursor: z.string().nullable().meta({ description: 'Pass as `cursor` for the next page; null on the last page.' }),
});

/** `POST /v1/files`: every file of the form, stored. */
export const uploadedFilesResponse = z.object({ files: z.array(fileResponse) });

const partUrl = z.object({
  partNumber: z.number().int().min(1),
  size: z.number().int().min(1).meta({ description: 'Bytes to PUT: the file\'s bytes from `(partNumber - 1) * partSize` on.' }),
  url: z.string().meta({ description: 'A presigned URL of the object store; PUT the part there (no other header needed) and keep the answer\'s `ETag`.' }),
});
const partBatch = {
  parts: z.array(partUrl).meta({ description: 'Up to 100 part URLs.' }),
  next: z.string().nullable().meta({ description: 'GET it for the next batch of part URLs; null when none are left.' }),
};

/** `GET /v1/uploads/:id/parts`: a batch of part URLs. */
export const partUrlsResponse = z.object({ ...partBatch, expiresAt: timestamp });

/** `POST /v1/uploads`: the pending record and where to PUT its bytes. */
export const directUploadResponse = z.object({
  file: fileResponse,
  upload: z.discriminatedUnion('method', [
    z.object({
      method: z.literal('PUT'),
      url: z.string().meta({ description: 'A presigned URL of the object store; PUT the bytes there.' }),
      headers: z.record(z.string(), z.string()).meta({ description: 'Headers the PUT must carry, exactly.' }),
      expiresAt: timestamp,
    }),
    z.object({
      method: z.literal('multipart'),
      partSize: z.number().int().min(1).meta({ description: 'Bytes of every part but the last.' }),
      partCount: z.number().int().min(2),
      ...partBatch,
      expiresAt: timestamp,
    }),
  ]),
  links: z.object({
    complete: z.string().meta({ description: 'POST here once the PUT (or every part) succeeded.' }),
    cancel: z.string().meta({ description: 'DELETE it to give the upload up.' }),
  }),
});

export const taskStatus = z.enum(['queued', 'running', 'succeeded', 'failed', 'cancelled']);

/** A file a task made, as listed in its `outputs`. */
export const taskOutput = z.object({
  id: z.string(),
  name: z.string(),
  contentType: z.string(),
  size: z.number().int().min(0),
  sha256: z.string().nullable(),
  status: fileStatus,
  links: z.object({ self: z.string(), content: z.string() }),
});

/** A background task (a report...) as `presentTask` sends it. */
export const taskResponse = z.object({
  id: z.string(),
  kind: z.string().meta({ description: 'What the task does, e.g. `report`.' }),
  status: taskStatus,
  waiting: z
    .literal(NO_WORKER)
    .optional()
    .meta({
      description:
        'Present while the task is due to run (queued, or its worker\'s lease ran out) and no live worker can take it (for a task pinned to a Fly Machine: none on that Machine). It runs once a worker starts.',
    }),
  progress: z.number().min(0).max(100).meta({ description: 'Percent done.' }),
  log: z.array(z.object({ at: timestamp, message: z.string() })).meta({ description: 'Lines meant for the user, oldest first.' }),
  attempts: z.number().int().min(0),
  maxAttempts: z.number().int().min(1),
  error: z
    .object({ code: z.string(), message: z.string().nullable() })
    .nullable()
    .meta({ description: 'Why the task failed (or why its last attempt did); null when it has not.' }),
  outputs: z.array(taskOutput),
  createdAt: timestamp,
  updatedAt: timestamp,
  finishedAt: timestamp.nullable(),
  links: z.object({
    self: z.string(),
    events: z.string().meta({ description: 'Server-sent events with this task as it changes.' }),
  }),
});

/** `GET /v1/tasks`. */
export const taskListResponse = z.object({
  tasks: z.array(taskResponse),
  nextCursor: z.string().nullable().meta({ description: 'Pass as `cursor` for the next page; null on the last page.' }),
});

/** One event's delivery to one endpoint, as `presentDelivery` sends it. */
export const webhookDelivery = z.object({
  id: z.string().meta({ description: 'The delivery.' }),
  eventId: z.string().nullable().meta({ description: 'The event\'s `webhook-id` header: the same on every attempt and for every endpoint.' }),
  type: z.string().nullable().meta({ description: 'The event type, e.g. `file.ready`.' }),
  endpoint: z.string().nullable().meta({ description: '`default` for WEBHOOK_URL, else the id `stowage webhooks add` printed.' }),
  status: z.enum(['pending', 'delivered', 'failed']).meta({ description: '`failed`: given up (`webhook_given_up`) or its endpoint removed.' }),
  attempts: z.number().int().min(0),
  lastError: z
    .object({ code: z.string(), message: z.string().nullable() })
    .nullable()
    .meta({ description: 'Why the last attempt failed (`webhook_failed`, `webhook_given_up`, `webhook_endpoint_removed`); null when none has.' }),
  nextAttemptAt: timestamp.nullable().meta({ description: 'When a pending delivery is tried next.' }),
  createdAt: timestamp,
  finishedAt: timestamp.nullable(),
});

/** `GET /v1/webhooks/deliveries`. */
export const webhookDeliveryListResponse = z.object({
  deliveries: z.array(webhookDelivery),
  nextCursor: z.string().nullable().meta({ description: 'Pass as `cursor` for the next page; null on the last page.' }),
});

/** `POST /v1/files/:id/links` and `POST /v1/page-links`. */
export const linkResponse = z.object({
  url: z.string().meta({ description: 'The absolute URL to hand out; it needs no credentials.' }),
  expiresAt: timestamp,
});

/** `POST /v1/upload-links`. */
export const uploadLinkResponse = z.object({
  url: z.string().meta({ description: 'POST multipart/form-data (`file` parts) here, without credentials, until it expires.' }),
  pageUrl: z.string().meta({ description: 'Opens the upload page for this link in a browser (the same address, with GET).' }),
  expiresAt: timestamp,
});

/** The one error shape every failed request answers with (http/errors.ts). */
export const errorResponse = z.object({
  error: z.object({
    code: z.string().meta({ description: 'Stable and machine-readable, e.g. `not_found`, `invalid_report`.' }),
    message: z.string().meta({ description: 'For a person; may change.' }),
    requestId: z.string().meta({ description: 'Also sent as the X-Request-Id header; quote it when reporting a problem.' }),
  }),
});

export const healthResponse = z.object({ status: z.literal('ok') });

export const readyResponse = z.object({
  status: z.literal('ready'),
  checks: z.object({
    store: z.literal('ok'),
    database: z.literal('ok'),
    workers: z.enum(['ok', 'none', 'unknown']).meta({
      description:
        '`none`: no live task worker can take this instance\'s tasks, so they stay queued (not a readiness failure: this instance serves everything else); `unknown`: the registry could not be read in time.',
    }),
  }),
  storeCheckedAt: timestamp.meta({ description: 'When the store was last checked: the write probe at start-up, then a read-only check every STORE_CHECK_INTERVAL.' }),
  storeCheckAgeSeconds: z.number().int().min(0).meta({ description: 'How long ago that was.' }),
  message: z.string().optional().meta({ description: 'With `workers: "none"`: what to start.' }),
});

const tally = z.object({ bytes: z.number().int().min(0), files: z.number().int().min(0) });

export const usageResponse = z.object({
  bytes: z.number().int().min(0).meta({ description: 'Bytes of the owner\'s stored files (every status but pending and failed uploads).' }),
  files: z.number().int().min(0).meta({ description: 'How many stored files.' }),
  reserved: tally.meta({ description: 'Uploads in progress: the bytes each reserved (its declared size, or its request\'s length) and how many. They count against the quota too.' }),
  quota: z.object({
    bytes: z.number().int().nullable().meta({ description: 'The byte limit (QUOTA_BYTES or the owner\'s own); null: none.' }),
    files: z.number().int().nullable().meta({ description: 'The file limit (QUOTA_FILES or the owner\'s own); null: none.' }),
  }),
  stores: z.record(z.string(), tally).meta({ description: 'Stored files by the store that holds them (`volume`, `s3`...).' }),
});

/**
 * The schemas the document names in `components.schemas`, by name. Anything not here is inlined
 * where it is used.
 */
export const componentSchemas = {
  File: fileResponse,
  FileList: fileListResponse,
  UploadedFiles: uploadedFilesResponse,
  FileUpdateRequest: fileUpdateRequest,
  DirectUploadRequest: directUploadRequest,
  DirectUpload: directUploadResponse,
  PartUrls: partUrlsResponse,
  CompleteUploadRequest: completeUploadRequest,
  ReportRequest: reportRequest,
  ReportColumn: columnSchema,
  ReportSource: sourceSchema,
  ReportOptions: optionsSchema,
  Task: taskResponse,
  TaskList: taskListResponse,
  Usage: usageResponse,
  WebhookDeliveryList: webhookDeliveryListResponse,
  TaskOutput: taskOutput,
  DownloadLinkRequest: downloadLinkRequest,
  UploadLinkRequest: uploadLinkRequest,
  PageLinkRequest: pageLinkRequest,
  Link: linkResponse,
  UploadLink: uploadLinkResponse,
  Error: errorResponse,
  Timestamp: timestamp,
  Health: healthResponse,
  Ready: readyResponse,
} as const;
