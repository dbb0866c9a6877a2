import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { StoreTotals } from '../catalog/files';
import type { DoctorReport } from '../doctor/report';

/** What the task worker reports; the metric objects live here so /metrics serves them. */
export interface TaskMetrics {
  /** One finished task: `outcome` is e.g. `succeeded`, `failed`, `retried`. */
  taskFinished(kind: string, outcome: string, durationSeconds: number): void;
  /** Where the queue depth comes from, read at each scrape: pending tasks by kind. */
  setQueueDepthSource(source: () => Promise<Record<string, number>> | Record<string, number>): void;
}

/**
 * Every metric of one app, on its own Registry (never prom-client's global one), so tests can
 * build several apps side by side. Labels take only bounded values: outcomes are error codes,
 * routes are patterns.
 */
export class ServiceMetrics implements TaskMetrics {
  readonly registry = new Registry();
  private queueDepthSource?: () => Promise<Record<string, number>> | Record<string, number>;

  private readonly uploads = new Counter({
    name: 'stowage_uploads_total',
    help: 'Uploaded files by outcome (stored, or the error code the client got).',
    labelNames: ['outcome'],
    registers: [this.registry],
  });
  private readonly bytesIn = new Counter({
    name: 'stowage_upload_bytes_total',
    help: 'Bytes of uploaded files stored.',
    registers: [this.registry],
  });
  private readonly downloads = new Counter({
    name: 'stowage_downloads_total',
    help: 'Downloads (GET content) by outcome: full, partial, not_modified, redirected, offloaded, interrupted, or an error code.',
    labelNames: ['outcome'],
    registers: [this.registry],
  });
  private readonly bytesOut = new Counter({
    name: 'stowage_download_bytes_total',
    help: 'Bytes of file content sent.',
    registers: [this.registry],
  });
  readonly requestDuration = new Histogram({
    name: 'stowage_http_request_duration_seconds',
    help: 'HTTP request latency by method, route pattern and status code.',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });
  private readonly taskDuration = new Histogram({
    name: 'stowage_task_duration_seconds',
    help: 'Task run time by kind and outcome.',
    labelNames: ['kind', 'outcome'],
    buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600],
    registers: [this.registry],
  });
  private readonly tasks = new Counter({
    name: 'stowage_tasks_total',
    help: 'Finished tasks by kind and outcome.',
    labelNames: ['kind', 'outcome'],
    registers: [this.registry],
  });
  private readonly doctorProblems = new Gauge({
    name: 'stowage_doctor_problems',
    help: 'Problems found by the last doctor run, by kind (missing, restorable, corrupt, orphan, stale_pending, unreachable, stuck_task, unmirrored, temp_leftover, source_leftover, incomplete_upload, tus_leftover, webhook_given_up).',
    labelNames: ['kind'],
    registers: [this.registry],
  });
  private readonly doctorRecords = new Gauge({
    name: 'stowage_doctor_records_checked',
    help: 'Records checked by the last doctor run.',
    registers: [this.registry],
  });
  private readonly doctorLastRun = new Gauge({
    name: 'stowage_doctor_last_run_timestamp_seconds',
    help: 'When the last doctor run finished (Unix time); absent before the first run.',
    registers: [this.registry],
  });

  private readonly storedBytes = new Gauge({
    name: 'stowage_stored_bytes',
    help: 'Bytes of ready files per store, as of the last expiry sweep (SWEEP_INTERVAL).',
    labelNames: ['store'],
    registers: [this.registry],
  });
  private readonly storedFiles = new Gauge({
    name: 'stowage_stored_files',
    help: 'Ready files per store, as of the last expiry sweep (SWEEP_INTERVAL).',
    labelNames: ['store'],
    registers: [this.registry],
  });

  constructor() {
    const metrics = this;
    new Gauge({
      name: 'stowage_task_queue_depth',
      help: 'Tasks waiting to run, by kind.',
      labelNames: ['kind'],
      registers: [this.registry],
      async collect() {
        if (!metrics.queueDepthSource) return;
        this.reset();
        for (const [kind, depth] of Object.entries(await metrics.queueDepthSource())) this.set({ kind }, depth);
      },
    });
    collectDefaultMetrics({ register: this.registry });
  }

  uploadStored(bytes: number): void {
    this.uploads.inc({ outcome: 'stored' });
    this.bytesIn.inc(bytes);
  }

  uploadFailed(outcome: string): void {
    this.uploads.inc({ outcome });
  }

  /** `bytes` sent, also for a download that ends early. */
  download(outcome: string, bytes = 0): void {
    this.downloads.inc({ outcome });
    if (bytes > 0) this.bytesOut.inc(bytes);
  }

  taskFinished(kind: string, outcome: string, durationSeconds: number): void {
    this.tasks.inc({ kind, outcome });
    this.taskDuration.observe({ kind, outcome }, durationSeconds);
  }

  setQueueDepthSource(source: () => Promise<Record<string, number>> | Record<string, number>): void {
    this.queueDepthSource = source;
  }

  /** The totals of one aggregate query (the sweep's), not a query per scrape. */
  storeTotals(totals: StoreTotals): void {
    this.storedBytes.reset();
    this.storedFiles.reset();
    for (const [store, { bytes, files }] of Object.entries(totals)) {
      this.storedBytes.set({ store }, bytes);
      this.storedFiles.set({ store }, files);
    }
  }

  doctorRun(report: DoctorReport): void {
    const s = report.summary;
    const counts = {
      missing: s.missing,
      restorable: s.restorable,
      corrupt: s.corrupt,
      orphan: s.orphans,
      stale_pending: s.stalePending,
      unreachable: s.unreachable,
      stuck_task: s.stuckTasks,
      unmirrored: s.unmirrored,
      temp_leftover: s.tempLeftovers,
      source_leftover: s.sourceLeftovers,
      incomplete_upload: s.incompleteUploads,
      tus_leftover: s.tusLeftovers,
      webhook_given_up: s.webhooksGivenUp,
    };
    for (const [kind, value] of Object.entries(counts)) this.doctorProblems.set({ kind }, value);
    this.doctorRecords.set(s.recordsChecked);
    this.doctorLastRun.set(Date.parse(report.finishedAt) / 1000);
  }
}
