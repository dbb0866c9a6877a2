import fsp from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import type { Express } from 'express';
import type { Logger } from 'pino';
import { createApp } from '../../src/app';
import type { CatalogDb } from '../../src/catalog/database';
import type { FileCatalog } from '../../src/catalog/files';
import { loadConfig, type Config, type Env } from '../../src/config';
import { createLogger } from '../../src/http/logging';
import { openResources, type Resources } from '../../src/resources';
import type { Files } from '../../src/files/files';
import type { Store } from '../../src/storage/store';
import type { StoreSet } from '../../src/storage/store-set';
import type { TaskQueue } from '../../src/tasks/queue';
import { listFilesDeep, makeTempDir } from './tmp';

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** A pino logger whose lines tests can read and wait for (instead of sleeping). */
export class LogCapture {
  readonly lines: LogLine[] = [];
  private waiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  readonly log: Logger;

  constructor(level = 'debug') {
    const sink = new PassThrough();
    sink.setEncoding('utf8');
    let buffered = '';
    sink.on('data', (text: string) => {
      buffered += text;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = JSON.parse(buffered.slice(0, nl)) as LogLine;
        buffered = buffered.slice(nl + 1);
        this.lines.push(line);
        this.waiters = this.waiters.filter((w) => !(w.match(line) && (w.resolve(line), true)));
      }
    });
    this.log = createLogger(level, sink);
  }

  waitFor(match: (l: LogLine) => boolean): Promise<LogLine> {
    const seen = this.lines.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.waiters.push({ match, resolve }));
  }
}

export interface TestApp {
  app: Express;
  config: Config;
  store: Store;
  stores: StoreSet;
  db: CatalogDb;
  catalog: FileCatalog;
  files: Files;
  queue: TaskQueue;
  /** Everything `openResources` built, as the server gets it. */
  resources: Resources;
  logs: LogCapture;
  dir: string;
  /** Every file under the data dir except the database, including temp files. */
  storedFiles(): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * The real app on a real store and database in a fresh temp dir (volume store by default). Given
 * `existingDir`, it runs there instead (its catalog and volume kept) and `close` leaves it.
 */
export async function buildTestApp(env: Env = {}, existingDir?: string): Promise<TestApp> {
  const dir = existingDir ?? (await makeTempDir());
  const config = loadConfig({ STORAGE: 'volume', STORAGE_PATH: path.join(dir, 'files'), TMPDIR: dir, LOG_LEVEL: 'debug', ...env }, dir);
  const logs = new LogCapture();
  const resources = await openResources(config, logs.log);
  const { store, stores, db, catalog, files, queue } = resources;
  const app = createApp({ config, resources, log: logs.log });
  return {
    app,
    config,
    store,
    stores,
    db,
    catalog,
    files,
    queue,
    resources,
    logs,
    dir,
    storedFiles: async () => (await listFilesDeep(dir)).filter((f) => !/stowage\.db/.test(f)),
    close: async () => {
      await resources.close();
      if (!existingDir) await fsp.rm(dir, { recursive: true, force: true });
    },
  };
}

/** All file records in the catalog, any owner or status. */
export async function allRecords(db: CatalogDb) {
  return db.selectFrom('files').selectAll().execute();
}
