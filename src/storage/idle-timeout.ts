import { finished, Readable } from 'node:stream';

/**
 * `source` as a stream that fails with `timeoutError()` when `source` sends nothing for `ms` while
 * its reader is waiting for more. Only that wait counts: a reader that stops reading (a slow
 * client pushing back) pauses the clock, so a long download to a slow client is never cut.
 */
export function idleTimeout(source: Readable, ms: number, timeoutError: () => Error): Readable {
  let timer: NodeJS.Timeout | undefined;
  const wait = () => {
    if (timer) timer.refresh();
    else timer = setTimeout(() => out.destroy(timeoutError()), ms);
  };
  const rest = () => {
    clearTimeout(timer);
    timer = undefined;
  };
  const out = new Readable({
    read() {
      wait();
      source.resume();
    },
    destroy(err, callback) {
      rest();
      source.destroy();
      callback(err);
    },
  });
  // Paused before the first listener, so bytes flow only once someone reads.
  source.pause();
  source.on('data', (chunk: Buffer) => {
    if (out.push(chunk)) wait();
    else {
      rest();
      source.pause();
    }
  });
  finished(source, (err) => {
    rest();
    if (err) out.destroy(err);
    else out.push(null);
  });
  return out;
}
