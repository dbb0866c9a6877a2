import type { Logger } from 'pino';
import type { FileCatalog } from '../catalog/files';
import type { Config } from '../config';
import type { Store } from '../storage/store';
import type { StoreSet } from '../storage/store-set';
import { REPORT_TASK, reportHandler } from './report-task';
import { MIRROR_TASK } from '../mirror/enqueue';
import { mirrorHandler } from '../mirror/handler';
import type { TaskHandler } from './worker';

export interface HandlerDeps {
  /** Where outputs go. */
  store: Store;
  /** Where sources are read from (a record's blob may be in another store). */
  stores: StoreSet;
  catalog: FileCatalog;
  log: Logger;
  config: Config;
}

/** Every kind of task stowage knows how to run. */
export function taskHandlers(deps: HandlerDeps): Record<string, TaskHandler> {
  return {
    [REPORT_TASK]: reportHandler(deps),
    ...(deps.stores.mirror && { [MIRROR_TASK]: mirrorHandler(deps) }),
  };
}
