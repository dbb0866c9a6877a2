import type { Lock, Locker, RequestRelease } from '@tus/utils';
import type { Instances } from '../../catalog/instances';
import type { TusLocks } from '../../catalog/tus-locks';

/** How long a lease lasts without renewal; renewed three times as often while its PATCH runs. */
const LEASE_MS = 30_000;

/**
 * One writer per upload across instances: the process's own lock first (tus's rule: a second
 * request there stops the first), then a lease in the catalog. A request on another instance
 * while one writes is answered 423; a lease whose process is gone (killed) is taken over at once,
 * one whose process is silent once it expires.
 */
export function sharedLocker(local: Locker, deps: { locks: TusLocks; instances: Instances; instance: string; fileIdOf: (uploadId: string) => string }): Locker {
  const { locks, instances, instance } = deps;
  const locked = () => ({ status_code: 423, body: 'Locked: another request is writing to this upload; try again once it has finished\n' });
  return {
    newLock(id: string): Lock {
      const fileId = deps.fileIdOf(id);
      const inProcess = local.newLock(id);
      let renewal: NodeJS.Timeout | undefined;
      return {
        async lock(signal: AbortSignal, cancelReq: RequestRelease) {
          await inProcess.lock(signal, cancelReq);
          try {
            let holder = await locks.take(fileId, instance, LEASE_MS);
            if (holder !== instance && (await instances.states([holder])).get(holder) === 'gone') {
              holder = await locks.take(fileId, instance, LEASE_MS, { replacing: holder });
            }
            if (holder !== instance) throw locked();
          } catch (err) {
            await inProcess.unlock();
            throw err;
          }
          renewal = setInterval(() => void locks.take(fileId, instance, LEASE_MS).catch(() => undefined), LEASE_MS / 3);
          renewal.unref();
        },
        async unlock() {
          clearInterval(renewal);
          // A lease that can't be released now (the catalog unreachable) expires.
          await locks.release(fileId, instance).catch(() => undefined);
          await inProcess.unlock();
        },
      };
    },
  };
}
