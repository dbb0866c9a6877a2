import os from 'node:os';
import path from 'node:path';
import dotenv from 'dotenv';
import { z } from 'zod';
import { parseBytes, parseDuration } from './units';
import { ConfigError } from '../errors';
import type { Placement } from '../catalog/placement';
import type { DatabaseSettings } from '../catalog/database-settings';
import type { S3StoreOptions } from '../storage/s3-options';
import { flyFields, readPlacement } from './fly';
import { herokuProblems } from './heroku';
import { databaseFields, readDatabase } from './database';
import { objectStorageFields, readObjectStorage, type DirectUploadSettings, type DownloadSettings } from './object-storage';
import { readMirror } from './mirror';
import { shownValue } from './redact';
import { authFields, type AuthSettings, readAuth } from './auth';
import { proxyFields, readTrustProxy, type TrustProxy } from './proxy';
import { httpFields, type HttpSettings, readHttp } from './http';
import { expiryFields, type ExpirySettings, readExpiry } from './expiry';
import { readWebhooks, webhookFields, type WebhookSettings } from './webhooks';
import { offloadFields, type OffloadSettings, readOffload } from './offload';

const byteSize = z
  .string()
  .transform((value, ctx) => {
    const n = parseBytes(value);
    if (n === undefined || n <= 0) {
      ctx.addIssue({ code: 'custom', message: `${value} is not a size (use bytes, or e.g. 10mb, 1gb)` });
      return z.NEVER;
    }
    return n;
  });

const positiveInt = (what: string) =>
  z
    .string()
    .regex(/^\d+$/, `must be a whole number of ${what}`)
    .transform(Number)
    .refine((n) => n > 0, `must be at least 1 ${what}`);

const schema = z.object({
  PORT: z
    .string()
    .regex(/^\d+$/, 'must be a port number')
    .transform(Number)
    .refine((n) => n <= 65535, 'must be a port number (0-65535)')
    .default(3000),
  HOST: z.string().min(1).optional(),
  DYNO: z.string().min(1).optional(),
  // npm sets it for scripts: `npm start` is a person at a terminal, whatever stderr is piped to.
  npm_lifecycle_event: z.string().optional(),
  FLY_APP_NAME: z.string().min(1).optional(),
  ...proxyFields(),
  STORAGE: z.enum(['memory', 'tmp', 'volume', 's3']).default('volume'),
  STORAGE_PATH: z.string().min(1).default('./data/files'),
  STORAGE_MIRROR: z.enum(['s3', 'volume'], { message: 'must be s3 or volume (the store every new file is copied to)' }).optional(),
  MEMORY_STORE_MAX_BYTES: byteSize.default(256 * 1024 ** 2),
  DATABASE_PATH: z.string().min(1).optional(),
  ...databaseFields({ positiveInt }),
  ...flyFields(),
  MAX_UPLOAD_BYTES: byteSize.default(1024 ** 3),
  MAX_FILES_PER_REQUEST: positiveInt('files').default(10),
  QUOTA_BYTES: byteSize.optional(),
  QUOTA_FILES: positiveInt('files').optional(),
  ALLOWED_CONTENT_TYPES: z
    .string()
    .default('')
    .transform((s) => s.split(',').map((t) => t.trim().toLowerCase()).filter(Boolean))
    .refine((types) => types.every((t) => /^[a-z0-9.+-]+\/(\*|[a-z0-9.+-]+)$/.test(t)), {
      message: 'must be a comma-separated list of content types such as image/png,image/*,application/pdf',
    }),
  SHUTDOWN_GRACE_SECONDS: positiveInt('seconds').default(25),
  WORKERS: z.string().regex(/^\d+$/, 'must be a whole number (0 runs no task worker in this process)').transform(Number).default(1),
  WORKER_CONCURRENCY: positiveInt('tasks').default(2),
  TASK_LEASE_SECONDS: positiveInt('seconds').default(30),
  TASK_MAX_ATTEMPTS: positiveInt('attempts').default(3),
  TASK_STALL_TIMEOUT: z
    .string()
    .transform((value, ctx) => {
      const ms = parseDuration(value);
      if (ms === undefined || ms < 1000) {
        ctx.addIssue({ code: 'custom', message: 'must be a duration of at least 1s (e.g. 2m)' });
        return z.NEVER;
      }
      return ms;
    })
    .default(120_000),
  TASK_RETENTION: z
    .string()
    .transform((value, ctx) => {
      const ms = parseDuration(value);
      if (ms === undefined || ms < 60 * 60_000) {
        ctx.addIssue({ code: 'custom', message: 'must be a duration of at least 1h (e.g. 30d)' });
        return z.NEVER;
      }
      return ms;
    })
    .default(30 * 86_400_000),
  TUS_EXPIRY: z
    .string()
    .transform((value, ctx) => {
      const ms = parseDuration(value);
      if (ms === undefined || ms < 1000) {
        ctx.addIssue({ code: 'custom', message: 'must be a duration of at least 1s (e.g. 24h)' });
        return z.NEVER;
      }
      return ms;
    })
    .default(86_400_000),
  TUS_PAGE_THRESHOLD: byteSize.default(20 * 1024 ** 2),
  REPORT_MAX_BODY_BYTES: byteSize.default(20 * 1024 ** 2),
  REPORT_SOURCE_MAX_BYTES: byteSize.default(100 * 1024 ** 2),
  REPORT_SOURCE_MAX_DECOMPRESSED_BYTES: byteSize.default(500 * 1024 ** 2),
  REPORT_SOURCE_MAX_ROWS: positiveInt('rows').default(1_000_000),
  // Both are held in memory while a source is read; the bounds keep one cell's text one modest
  // allocation and the shared-strings table's offsets 32-bit.
  REPORT_SOURCE_MAX_CELL_BYTES: byteSize
    .refine((n) => n <= 1024 ** 2, 'must be at most 1mb (Excel cells hold at most 32,767 characters, under 128kb)')
    .default(128 * 1024),
  REPORT_SOURCE_MAX_SHARED_STRINGS_BYTES: byteSize.refine((n) => n <= 1024 ** 3, 'must be at most 1gb').default(64 * 1024 ** 2),
  REPORT_MAX_BYTES: byteSize.default(256 * 1024 ** 2),
  REPORT_WORKER_MAX_MB: positiveInt('MB')
    .refine((n) => n >= 16, 'must be at least 16 (MB of JavaScript heap for one report job; a PDF needs about 24)')
    .default(128),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ...objectStorageFields({ byteSize, positiveInt }),
  ...offloadFields(),
  ...authFields({ positiveInt }),
  ...httpFields({ positiveInt }),
  ...expiryFields(),
  ...webhookFields(),
  METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters (it guards GET /metrics)').optional(),
  STORE_CHECK_INTERVAL: z
    .string()
    .transform((value, ctx) => {
      const ms = parseDuration(value);
      if (ms === undefined || ms < 1000) {
        ctx.addIssue({ code: 'custom', message: 'must be a duration of at least 1s (e.g. 30s)' });
        return z.NEVER;
      }
      return ms;
    })
    .default(30_000),
  DOCTOR_INTERVAL: z
    .string()
    .transform((value, ctx) => {
      if (value.toLowerCase() === 'off') return undefined;
      const ms = parseDuration(value);
      if (ms === undefined || ms < 60_000) {
        ctx.addIssue({ code: 'custom', message: 'must be off or a duration of at least 1m (e.g. 15m, 6h, 1d)' });
        return z.NEVER;
      }
      return ms;
    })
    .optional(),
});

export type Env = Record<string, string | undefined>;

/** Every variable the configuration reads (docs/configuration.md lists each; a test checks). */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(schema.shape);

export interface Config {
  port: number;
  host: string;
  /** Run by `npm start`: a person is watching (the human listening line). */
  startedByNpm: boolean;
  /** TRUST_PROXY: the proxies whose X-Forwarded-For/-Proto say the client's address and https. */
  trustProxy: TrustProxy;
  /** Timeouts on slow or stuck clients, keep-alive, and the caps on uploads in flight. */
  http: HttpSettings;
  /** Who may call: API keys, the host app's JWTs, signed links and sessions, dev mode on loopback. */
  auth: AuthSettings;
  storage: {
    driver: 'memory' | 'tmp' | 'volume' | 's3';
    /** Absolute root directory of a filesystem store (tmp and volume). */
    path: string;
    /** Which variable the operator sets to move the store (named in startup errors). */
    pathVariable: string;
    memoryMaxBytes: number;
    /** Absolute STORAGE_PATH: the volume store, also read from (or migrated to) when STORAGE is another driver. */
    volumePath: string;
    /** Set when S3_BUCKET (or BUCKET_NAME) is: the primary store for STORAGE=s3, else a store to read from and migrate to. */
    s3?: S3StoreOptions;
    /** STORAGE_MIRROR: the store every ready file is copied to in the background, and read from when the primary lost it. */
    mirror?: 's3' | 'volume';
  };
  /** How downloads leave: through stowage, redirected to the bucket, or (a volume's) handed to the proxy in front. */
  downloads: DownloadSettings & { offload?: OffloadSettings };
  directUploads: DirectUploadSettings;
  /** Absolute path of the SQLite file, or ':memory:' (unused when `database` is PostgreSQL). */
  databasePath: string;
  /** The catalog and task queue: SQLite at `databasePath`, or PostgreSQL (DATABASE_URL). */
  database: DatabaseSettings;
  /** Set for a volume store on Fly (or FLY_REPLAY=on): files remember their Machine, reads elsewhere are replayed there. */
  placement?: Placement;
  uploads: { maxBytes: number; maxFiles: number; allowedContentTypes: string[] };
  /** Each owner's limits unless `stowage quotas set` gave it its own (QUOTA_BYTES, QUOTA_FILES); unset: none. */
  quotas: { bytes?: number; files?: number };
  /**
   * Resumable uploads at /v1/tus: how long an unfinished one is kept (TUS_EXPIRY), and the size
   * from which the page sends a file through tus rather than one request (TUS_PAGE_THRESHOLD).
   */
  tus: { expiryMs: number; pageThresholdBytes: number };
  shutdownGraceMs: number;
  logLevel: string;
  tasks: {
    /** Task slots run inside `serve`; 0 when a separate `stowage worker` process runs them. */
    inProcessWorkers: number;
    /** Task slots of a `stowage worker` process. */
    workerConcurrency: number;
    leaseMs: number;
    /** A running task that shows no progress for this long is stopped and retried (TASK_STALL_TIMEOUT). */
    stallMs: number;
    maxAttempts: number;
    /** Finished tasks are removed this long after they finished (TASK_RETENTION). */
    retentionMs: number;
  };
  reports: {
    /** Largest `POST /v1/reports` JSON body (inline rows). */
    maxBodyBytes: number;
    /** Largest report output (REPORT_MAX_BYTES): past it the task fails with `report_too_large`. */
    maxOutputBytes: number;
    /** JavaScript heap (old generation) one report job's thread may use, in MB (REPORT_WORKER_MAX_MB). */
    threadMaxHeapMb: number;
    /** Caps on an uploaded file read as a report source (zip-bomb and size guards). */
    source: {
      maxBytes: number;
      maxDecompressedBytes: number;
      maxRows: number;
      /** UTF-8 bytes of text in one cell. */
      maxCellBytes: number;
      /** Bytes an xlsx's shared-strings table takes in memory (its UTF-8 text plus 12 per string). */
      maxSharedStringsBytes: number;
    };
  };
  /** File lifetimes: REPORT_TTL, and how often the expiry sweep runs (SWEEP_INTERVAL). */
  expiry: ExpirySettings;
  /** Where events are sent (WEBHOOK_URL; endpoints per owner are in the catalog), and how. */
  webhooks: WebhookSettings;
  /** When set, GET /metrics requires `Authorization: Bearer <token>`. */
  metricsToken?: string;
  /** How often `/readyz`'s store check is refreshed in the background (STORE_CHECK_INTERVAL). */
  storeCheckIntervalMs: number;
  /** How often the periodic doctor checks catalog against stores; undefined: never. */
  doctorIntervalMs?: number;
  /** Names this process's instance (FLY_MACHINE_ID or DYNO; unset: the host name). */
  instanceName?: string;
  /** Where report scratch goes (a directory per process under `workRoot`), and TMPDIR itself. */
  scratch: { workRoot: string; tmpRoot: string };
}

/**
 * Reads the configuration from `env` (by default the process environment after loading `.env`)
 * and validates it. Throws ConfigError with one line per bad variable.
 */
export function loadConfig(env?: Env, cwd = process.cwd()): Config {
  if (!env) {
    dotenv.config({ path: path.join(cwd, '.env'), quiet: true });
    env = process.env;
  }
  // An empty variable means "not set", as in a .env file with `NAME=`.
  const raw = Object.fromEntries(
    Object.keys(schema.shape)
      .map((k) => [k, env[k]])
      .filter(([, v]) => v !== undefined && v !== ''),
  );
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    // One line per variable: the first thing wrong with it.
    const firstPerVariable = parsed.error.issues.filter((issue, i, all) => all.findIndex((o) => o.path[0] === issue.path[0]) === i);
    throw new ConfigError(
      firstPerVariable.map((issue) => {
        const name = String(issue.path[0] ?? 'config');
        const value = raw[name];
        const shown = value === undefined ? undefined : shownValue(name, value);
        return `${name}: ${shown === undefined ? '' : `${shown} `}${issue.message}`;
      }),
    );
  }
  const e = parsed.data;
  // Before the readers below: on a dyno the disk stores are wrong whatever else is set.
  const onDyno = herokuProblems({ ...e, storageSet: raw.STORAGE });
  if (onDyno.length) throw new ConfigError(onDyno);
  const objectStorage = readObjectStorage(e);
  const tmpRoot = env.TMPDIR || os.tmpdir();
  const tmpBase = path.join(tmpRoot, 'stowage');
  const volumePath = path.resolve(cwd, e.STORAGE_PATH);
  // With STORAGE=s3 the catalog still defaults to ./data/stowage.db (beside STORAGE_PATH), so a
  // volume migrated to a bucket keeps its catalog where it was.
  const storagePath = e.STORAGE === 'tmp' ? path.join(tmpBase, 'files') : volumePath;
  const mirror = readMirror({ mirror: e.STORAGE_MIRROR, primary: e.STORAGE, storagePath, volumePath, s3: objectStorage.s3 });
  const defaultDatabase =
    e.STORAGE === 'memory' ? ':memory:' : path.join(path.dirname(storagePath), 'stowage.db');
  const databasePath =
    e.DATABASE_PATH === undefined || e.DATABASE_PATH === ':memory:'
      ? (e.DATABASE_PATH ?? defaultDatabase)
      : path.resolve(cwd, e.DATABASE_PATH);
  // Loopback unless a platform that routes to the process from outside runs it (or HOST says so).
  const host = e.HOST ?? (e.DYNO || e.FLY_APP_NAME ? '0.0.0.0' : '127.0.0.1');
  return {
    port: e.PORT,
    host,
    startedByNpm: e.npm_lifecycle_event === 'start',
    trustProxy: readTrustProxy(e),
    http: readHttp(e),
    auth: readAuth(e, host),
    storage: {
      driver: e.STORAGE,
      path: storagePath,
      pathVariable: e.STORAGE === 'tmp' ? 'TMPDIR' : e.STORAGE === 's3' ? 'S3_BUCKET' : 'STORAGE_PATH',
      memoryMaxBytes: e.MEMORY_STORE_MAX_BYTES,
      volumePath,
      s3: objectStorage.s3,
      mirror,
    },
    downloads: { ...objectStorage.downloads, offload: readOffload(e, volumePath) },
    directUploads: objectStorage.directUploads,
    databasePath,
    database: readDatabase(e, databasePath),
    placement: readPlacement(e),
    uploads: {
      maxBytes: e.MAX_UPLOAD_BYTES,
      maxFiles: e.MAX_FILES_PER_REQUEST,
      allowedContentTypes: e.ALLOWED_CONTENT_TYPES,
    },
    quotas: { bytes: e.QUOTA_BYTES, files: e.QUOTA_FILES },
    tus: { expiryMs: e.TUS_EXPIRY, pageThresholdBytes: e.TUS_PAGE_THRESHOLD },
    shutdownGraceMs: e.SHUTDOWN_GRACE_SECONDS * 1000,
    logLevel: e.LOG_LEVEL,
    tasks: {
      inProcessWorkers: e.WORKERS,
      workerConcurrency: e.WORKER_CONCURRENCY,
      leaseMs: e.TASK_LEASE_SECONDS * 1000,
      stallMs: e.TASK_STALL_TIMEOUT,
      maxAttempts: e.TASK_MAX_ATTEMPTS,
      retentionMs: e.TASK_RETENTION,
    },
    reports: {
      maxBodyBytes: e.REPORT_MAX_BODY_BYTES,
      maxOutputBytes: e.REPORT_MAX_BYTES,
      threadMaxHeapMb: e.REPORT_WORKER_MAX_MB,
      source: {
        maxBytes: e.REPORT_SOURCE_MAX_BYTES,
        maxDecompressedBytes: e.REPORT_SOURCE_MAX_DECOMPRESSED_BYTES,
        maxRows: e.REPORT_SOURCE_MAX_ROWS,
        maxCellBytes: e.REPORT_SOURCE_MAX_CELL_BYTES,
        maxSharedStringsBytes: e.REPORT_SOURCE_MAX_SHARED_STRINGS_BYTES,
      },
    },
    expiry: readExpiry(e),
    webhooks: readWebhooks(e),
    metricsToken: e.METRICS_TOKEN,
    storeCheckIntervalMs: e.STORE_CHECK_INTERVAL,
    doctorIntervalMs: e.DOCTOR_INTERVAL,
    instanceName: e.FLY_MACHINE_ID ?? e.DYNO,
    scratch: { workRoot: path.join(tmpBase, 'work'), tmpRoot: path.resolve(cwd, tmpRoot) },
  };
}
