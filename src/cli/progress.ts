import { SingleBar } from 'cli-progress';
import type { Phase, ProgressListener } from '../doctor/context';

const TITLES: Record<Phase, string> = {
  records: 'records checked',
  pending: 'pending uploads',
  blobs: 'blobs listed   ',
  tasks: 'stuck tasks    ',
  mirror: 'mirror copies  ',
  leftovers: 'leftovers      ',
  uploads: 'multipart      ',
};

/**
 * A progress bar on the terminal's stderr, one per phase. The caller decides whether to show one
 * at all (only on a TTY, never with --json), so pipes and cron mails stay clean.
 */
export class ProgressDisplay {
  private bar?: SingleBar;
  private phase?: Phase;

  constructor(private readonly stream: NodeJS.WriteStream) {}

  readonly listener: ProgressListener = ({ phase, done, total }) => {
    if (phase !== this.phase) {
      this.bar?.stop();
      this.phase = phase;
      this.bar = new SingleBar({
        stream: this.stream,
        format: `${TITLES[phase]} |{bar}| {value}${total === undefined ? '' : '/{total}'}`,
        hideCursor: true,
      });
      this.bar.start(total ?? done, done);
      return;
    }
    // Listings have no known end: the bar shows how far it got so far.
    this.bar!.setTotal(total ?? done);
    this.bar!.update(done);
  };

  stop(): void {
    this.bar?.stop();
  }
}
