import type { Logger } from 'pino';
import type { FileCatalog } from '../catalog/files';
import type { Store } from '../storage/store';
import type { TaskHandler } from './worker';

export interface HandlerDeps {
  store: Store;
  catalog: FileCatalog;
  log: Logger;
}

/** Every kind of task stowage knows how to run. */
export function taskHandlers(_deps: HandlerDeps): Record<string, TaskHandler> {
  return {};
}
