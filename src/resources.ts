import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { type CatalogDb, isPostgres, openDatabase } from './catalog/database';
import { HEARTBEAT_MS, Instances } from './catalog/instances';
import { FileCatalog, type ReadyHook } from './catalog/files';
import { TusHashes } from './catalog/tus-hashes';
import { TusLocks } from './catalog/tus-locks';
import { migrateToLatest } from './catalog/migrations';
import type { Config } from './config';
import type { DoctorDeps } from './doctor/context';
import { DEFAULT_GRACE_MS } from './doctor/context';
import { PeriodicDoctor } from './doctor/periodic';
import { ApiKeys } from './auth/api-keys';
import { Authenticator } from './auth/authenticator';
import { Links } from './auth/links';
import { Sessions } from './auth/sessions';
import { Signer } from './auth/signed-tokens';
import { type ExpiredHook, Files } from './files/files';
import { type ExpirySweepDeps, startExpirySweeper } from './expiry/sweeper';
import { every, type Periodic } from './housekeeping';
import { newInstance } from './instance';
import type { ScratchPlaces } from './leftovers';
import { FileSystemStore } from './storage/filesystem';
import type { ServiceMetrics, TaskMetrics } from './metrics/metrics';
import { MIRROR_TASK, mirrorOnReady } from './mirror/enqueue';
import { mirrorHandler } from './mirror/handler';
import { Quotas } from './quotas/quotas';
import { Readiness } from './readiness';
import { ReportThreads } from './reports/thread-pool';
import type { Store } from './storage/store';
import type { StoreSet } from './storage/store-set';
import { openStores } from './storage/open-stores';
import { startLeftoverSweeper } from './sweeper';
import { TaskQueue } from './tasks/queue';
import { REPORT_TASK, reportHandler } from './tasks/report-task';
import { type TaskHandler, Worker } from './tasks/worker';
import { DirectUploads } from './uploads/direct-upload';
import { tusUploadPlace } from './uploads/tus/leftovers';
import { TusUploads } from './uploads/tus/tus-uploads';
import { webhookHandler } from './webhooks/deliver';
import { Webhooks } from './webhooks/endpoints';
import { WEBHOOK_TASK, WebhookEvents } from './webhooks/events';

/**
 * The composition root: every long-lived object of a process (server, worker, CLI command) is
 * built here, once, and passed to whatever needs it.
 */
export interface Resources {
  /** Where new blobs go. */
  store: Store;
  /** Every store a record may point at. */
  stores: StoreSet;
  db: CatalogDb;
  catalog: FileCatalog;
  /** The lifecycle of a file: store, publish, discard, delete, open. */
  files: Files;
  /** Owners' quotas and usage (QUOTA_BYTES, QUOTA_FILES, `stowage quotas`). */
  quotas: Quotas;
  queue: TaskQueue;
  directUploads: DirectUploads;
  /** Resumable uploads (tus) at /v1/tus. */
  tus: TusUploads;
  /** Webhook endpoints and their deliveries. */
  webhooks: Webhooks;
  /** Queues webhook events in the transaction that makes them happen (`fileExpired` for the expiry sweep). */
  events: WebhookEvents;
  /** Every kind of task this process can run, by kind. */
  handlers: Record<string, TaskHandler>;
  /** The threads reports are built in (started when a report runs). */
  reportThreads: ReportThreads;
  keys: ApiKeys;
  /** Signed download, upload and page links (SECRET_KEY; a random key for this process when unset). */
  links: Links;
  /** Page sessions: the signed cookie a page or upload link sets. */
  sessions: Sessions;
  /** Who a request comes from (keys, JWTs, sessions, dev mode). */
  authenticator: Authenticator;
  /** This process in the catalog's registry of running processes, and the verdict on others. */
  instances: Instances;
  /** What `/readyz` answers from; `serve` starts its background store check. */
  readiness: Readiness;
  /** Where scratch files are written (swept when their process dies), and this process's work directory. */
  scratch: { places: ScratchPlaces; workDir: string };
  /** Stops the heartbeat, removes the work directory, closes the queue's listener, the stores and the database. */
  close(): Promise<void>;
}

/** Opens the stores and the catalog, proving both usable, runs pending migrations, and builds the services. */
export async function openResources(config: Config, log: Logger): Promise<Resources> {
  const instance = newInstance(config.instanceName);
  const stores = await openStores(config.storage, instance.id);
  const db = openDatabase(config.database, (err) => log.warn({ err }, 'idle database connection lost'));
  try {
    const { applied } = await migrateToLatest(db);
    if (applied.length) log.info({ applied }, 'database migrated');
  } catch (err) {
    await db.destroy();
    await stores.close();
    throw err;
  }
  // Registered before anything is written in this process's name; a catalog that can't take the
  // row now (a full disk) gets it from a later heartbeat.
  const instances = new Instances(db, instance);
  await instances.beat().catch((err: unknown) => log.warn({ err, instance: instance.id }, 'could not register this process; the heartbeat will retry'));
  const heartbeat = every(HEARTBEAT_MS, () => instances.beat(), log, 'instance heartbeat', { immediately: false });
  const places: ScratchPlaces = {
    tempDirs: stores.all().flatMap((s) => (s instanceof FileSystemStore ? [{ store: s.driver, dir: s.tempDirectory }] : [])),
    workRoot: config.scratch.workRoot,
    tmpRoot: config.scratch.tmpRoot,
  };
  const workDir = path.join(config.scratch.workRoot, instance.id);
  const settings = config.database;
  // Loaded only where used (pg, jose): modules a server never runs still hold heap.
  const wakeups = settings.kind === 'postgres' && isPostgres(db) ? (await import('./tasks/pg-wakeups')).postgresWakeups(db, settings, log) : undefined;
  const catalog = new FileCatalog(db, config.placement);
  const quotas = new Quotas(db, config.quotas);
  const events = new WebhookEvents({ defaultEndpoint: config.webhooks.endpoint !== undefined, taskKinds: [REPORT_TASK] });
  const mirrorHook = mirrorOnReady(stores);
  // Every publish asks the catalog for the owner's endpoints: one added by the CLI counts at once.
  const onReady: ReadyHook = async (db, owner) => {
    const work = [await mirrorHook?.(db, owner), await events.fileReady(db, owner)].filter((w) => w !== undefined);
    if (work.length === 0) return undefined;
    return async (trx, fileIds) => {
      for (const w of work) await w(trx, fileIds);
    };
  };
  const files = new Files({ db, catalog, stores, onReady, placement: config.placement, instance: instance.id, quotas, events });
  const queue = new TaskQueue(db, (trx, owner, outputs) => files.publish(owner, outputs, trx), wakeups, config.placement?.machineId, instances, events.taskFinished);
  const webhooks = new Webhooks(db, config.webhooks, queue);
  const reportThreads = new ReportThreads({ maxHeapMb: config.reports.threadMaxHeapMb, maxOutputBytes: config.reports.maxOutputBytes });
  const handlers: Record<string, TaskHandler> = {
    [REPORT_TASK]: reportHandler({ files, threads: reportThreads, sourceLimits: config.reports.source, tempDir: workDir, ttlMs: config.expiry.reportTtlMs, log }),
    ...(stores.mirror && { [MIRROR_TASK]: mirrorHandler({ stores, catalog, log }) }),
    [WEBHOOK_TASK]: webhookHandler({ settings: config.webhooks, endpoint: webhooks.endpoint, log }),
  };
  const keys = new ApiKeys(db);
  const { auth } = config;
  // Without SECRET_KEY (a loopback server only: config requires it anywhere else) links and
  // sessions are signed with a random key of this process; they end when it stops.
  const links = new Links(new Signer(auth.secretKeys));
  const sessions = new Sessions(links);
  const authenticator = new Authenticator({
    keys,
    jwt: auth.jwt && new (await import('./auth/jwt')).JwtVerifier(auth.jwt),
    sessions,
    metricsToken: config.metricsToken,
    devMode: auth.loopback && !auth.jwt && !(await keys.anyActive()),
  });
  const readiness = new Readiness({
    store: stores.primary,
    db,
    instances,
    machineId: config.placement?.machineId ?? null,
    intervalMs: config.storeCheckIntervalMs,
    log,
  });
  const directUploads = new DirectUploads({ uploads: config.uploads, directUploads: config.directUploads, stores, files, log });
  const tus = new TusUploads({ storage: config.storage, expiryMs: config.tus.expiryMs, workDir, files, hashes: new TusHashes(db), locks: new TusLocks(db), instances, instance: instance.id, log });
  const close = async () => {
    await readiness.stop();
    await reportThreads.close();
    await heartbeat.stop();
    await fsp.rm(workDir, { recursive: true, force: true }).catch((err: unknown) => log.warn({ err, workDir }, 'could not remove the work directory'));
    await instances.deregister().catch((err: unknown) => log.warn({ err }, 'could not deregister this process'));
    await queue.close();
    await stores.close();
    await db.destroy();
  };
  return {
    store: stores.primary,
    stores,
    db,
    catalog,
    files,
    quotas,
    queue,
    directUploads,
    tus,
    webhooks,
    events,
    handlers,
    reportThreads,
    keys,
    links,
    sessions,
    authenticator,
    instances,
    readiness,
    scratch: { places, workDir },
    close,
  };
}

/** A worker over the given resources, or undefined when there are no slots to run. */
export function createWorker(resources: Resources, config: Config, log: Logger, concurrency: number, metrics?: TaskMetrics): Worker | undefined {
  const { files, queue, handlers } = resources;
  if (concurrency < 1 || Object.keys(handlers).length === 0) return undefined;
  return new Worker({ queue, files, log, handlers, metrics, concurrency, leaseMs: config.tasks.leaseMs, stallMs: config.tasks.stallMs });
}

/** What the doctor checks with: every store the server reads from, so no record's store is unknown to it. */
export function doctorDeps(resources: Resources, config: Config, log: Logger): DoctorDeps {
  const { db, stores, files, instances, scratch } = resources;
  return { db, stores, mirror: stores.mirror, files, placement: config.placement, instances, scratch: scratch.places, tusUploads: tusUploadPlace(config.storage), log };
}

/**
 * The sweep of what failed or dead work left (expired direct and resumable uploads, uploads and
 * source copies of killed processes, incomplete multipart uploads): at start-up, then every minute.
 * `serve` and `stowage worker` both run it.
 */
export function startSweeper(resources: Resources, config: Config, log: Logger): Periodic {
  const { files, stores, instances, scratch, tus } = resources;
  return startLeftoverSweeper({ files, stores, instances, places: scratch.places, tus, log, intervalMs: config.directUploads.sweepIntervalMs });
}

/** The periodic doctor (`DOCTOR_INTERVAL`), or undefined when it is off. */
export function createPeriodicDoctor(resources: Resources, config: Config, log: Logger, metrics?: ServiceMetrics): PeriodicDoctor | undefined {
  if (!config.doctorIntervalMs) return undefined;
  return new PeriodicDoctor(doctorDeps(resources, config, log), {
    intervalMs: config.doctorIntervalMs,
    graceMs: DEFAULT_GRACE_MS,
    onReport: (r) => metrics?.doctorRun(r),
  });
}

/**
 * What the expiry sweep runs with. `onExpired` runs in the transaction that makes files
 * `expired`: the one place a `file.expired` event is to be recorded. Without `removeFiles` (a web
 * process whose workers run elsewhere) it only refreshes the storage gauges.
 */
export function expirySweepDeps(
  resources: Resources,
  config: Config,
  log: Logger,
  options: { metrics?: ServiceMetrics; removeFiles?: boolean; onExpired?: ExpiredHook } = {},
): ExpirySweepDeps {
  return {
    files: resources.files,
    db: resources.db,
    log,
    machineId: config.placement?.machineId,
    // The owners' webhooks hear of it (`file.expired`) unless the caller takes the hook.
    onExpired: options.onExpired ?? ((records, trx) => resources.events.fileExpired(records, trx)),
    onTotals: options.metrics && ((totals) => options.metrics!.storeTotals(totals)),
    removeFiles: options.removeFiles,
  };
}

/** The expiry sweep every SWEEP_INTERVAL, from now: with the workers (`serve` with WORKERS>0, `stowage worker`). */
export function startExpiry(resources: Resources, config: Config, log: Logger, options: Parameters<typeof expirySweepDeps>[3] = {}): Periodic {
  return startExpirySweeper({ ...expirySweepDeps(resources, config, log, options), intervalMs: config.expiry.sweepIntervalMs });
}
