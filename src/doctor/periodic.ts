import type { DoctorDeps } from './context';
import { runChecks } from './doctor';
import { summaryLine } from './format';
import { type DoctorReport, problemCount } from './report';

export interface PeriodicDoctorOptions {
  intervalMs: number;
  graceMs: number;
  /** Called with every finished run (metrics publish the counts from here). */
  onReport?: (report: DoctorReport) => void;
}

/**
 * Runs the doctor's checks every `intervalMs` (`DOCTOR_INTERVAL`), report only: it never fixes
 * or deletes, that stays an operator's decision. Runs never overlap, and the timer doesn't keep
 * the process alive. The last report is kept for metrics.
 */
export class PeriodicDoctor {
  private timer?: NodeJS.Timeout;
  private running?: Promise<DoctorReport | undefined>;
  private waiters: ((report: DoctorReport) => void)[] = [];
  lastReport?: DoctorReport;

  constructor(
    private readonly deps: DoctorDeps,
    private readonly options: PeriodicDoctorOptions,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      this.running ??= this.run().finally(() => (this.running = undefined));
    }, this.options.intervalMs);
    this.timer.unref();
  }

  /** Resolves with the report of the next run to finish. */
  nextReport(): Promise<DoctorReport> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Stops the timer and waits for a run in progress, so the database can be closed after. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private async run(): Promise<DoctorReport | undefined> {
    const { log } = this.deps;
    try {
      const report = await runChecks(this.deps, { graceMs: this.options.graceMs, verify: false });
      const problems = problemCount(report.summary);
      if (problems > 0) log.warn({ event: 'doctor.run', summary: report.summary, problems: report.problems.slice(0, 100) }, `doctor: ${summaryLine(report)}`);
      else log.info({ event: 'doctor.run', summary: report.summary }, `doctor: ${summaryLine(report)}`);
      this.lastReport = report;
      this.options.onReport?.(report);
      for (const resolve of this.waiters.splice(0)) resolve(report);
      return report;
    } catch (err) {
      log.error({ event: 'doctor.run', err }, 'doctor run failed');
      return undefined;
    }
  }
}
