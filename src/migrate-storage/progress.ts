import { SingleBar, Presets } from 'cli-progress';
import type { MigrationSummary } from './migrate';

export interface MigrationProgress {
  start(toMove: number, bytes: number): void;
  update(summary: MigrationSummary): void;
  stop(): void;
}

function mib(bytes: number): string {
  return (bytes / 1024 ** 2).toFixed(1);
}

/** A progress bar on stderr (only used on a terminal; pipes get log lines instead). */
export function terminalProgress(stream: NodeJS.WriteStream): MigrationProgress {
  let totalBytes = 0;
  const bar = new SingleBar(
    {
      stream,
      format: 'migrating {bar} {value}/{total} files | {copiedMiB}/{totalMiB} MiB | failed {failed} | eta {eta_formatted}',
      hideCursor: true,
    },
    Presets.shades_classic,
  );
  return {
    start(toMove, bytes) {
      totalBytes = bytes;
      bar.start(toMove, 0, { copiedMiB: mib(0), totalMiB: mib(bytes), failed: 0 });
    },
    update(s) {
      bar.update(s.copied + s.failed, { copiedMiB: mib(s.bytes), totalMiB: mib(totalBytes), failed: s.failed });
    },
    stop() {
      bar.stop();
    },
  };
}
