import fsp from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import type { Express } from 'express';
import request from 'supertest';
import type { Scope } from '../../src/auth/principal';
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
import { Worker } from '../../src/tasks/worker';
import { listFilesDeep, makeTempDir } from './tmp';

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/**
 * The keys that appear more than once at the top of a JSON object's text. JSON.parse keeps the
 * last silently, but log processors differ: a line must not say `owner` twice.
 */
function repeatedTopLevelKeys(json: string): string[] {
  const seen = new Set<string>();
  const repeated: string[] = [];
  let depth = 0;
  let keyNext = false;
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (c === '"') {
      let end = i + 1;
      while (json[end] !== '"') end += json[end] === '\\' ? 2 : 1;
      if (depth === 1 && keyNext) {
        const key = JSON.parse(json.slice(i, end + 1)) as string;
        if (seen.has(key)) repeated.push(key);
        seen.add(key);
        keyNext = false;
      }
      i = end;
    } else if (c === '{' || c === '[') {
      depth++;
      keyNext = depth === 1;
    } else if (c === '}' || c === ']') depth--;
    else if (c === ',' && depth === 1) keyNext = true;
  }
  return repeated;
}

/**
 * A pino logger whose lines tests can read and wait for (instead of sleeping). A line that names a
 * key twice is kept in `malformed`; a test app's `close` fails on it.
 */
export class LogCapture {
  readonly lines: LogLine[] = [];
  readonly malformed: string[] = [];
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
        const text = buffered.slice(0, nl);
        const line = JSON.parse(text) as LogLine;
        if (repeatedTopLevelKeys(text).length) this.malformed.push(text);
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
  /**
   * Requests to the app with a real API key: `owner`'s write key (created with the app for the
   * owners in TEST_OWNERS), or the key given. The way tests call the API: never without credentials.
   */
  http(owner?: string): ReturnType<typeof request.agent>;
  /** A new API key's token for `owner` with `scope` (read, write, service), as `stowage keys create` makes it. */
  key(owner: string, scope?: Scope, options?: { expiresAt?: Date }): Promise<string>;
  /** A worker running the app's own task handlers in-process, polling every 20 ms; stop it before `close`. */
  startTaskWorker(options?: { retryBaseMs?: number }): Worker;
  /** Requests with this token. */
  withToken(token: string): ReturnType<typeof request.agent>;
  close(): Promise<void>;
}

/** A SECRET_KEY for tests (signs links and sessions). */
export const TEST_SECRET_KEY = 'test-secret-key-0123456789abcdefghijklmnop';

/** Owners whose write keys every test app has from the start (`t.http(owner)`). */
export const TEST_OWNERS = ['anonymous', 'alice', 'bob', 'carol', 'dave', 'erin'];

export interface TestAppOptions {
  /**
   * Whether to create the TEST_OWNERS' write keys (true by default). Only the page server turns
   * this off: on a loopback HOST with no key it runs in dev mode, and then `http()` and `key()`
   * refuse (a key created later would not match what the server decided at start-up).
   */
  keys?: boolean;
}

/**
 * The real app on a real store and database in a fresh temp dir (volume store by default). Given
 * `existingDir`, it runs there instead (its catalog and volume kept) and `close` leaves it.
 */
export async function buildTestApp(env: Env = {}, existingDir?: string, options: TestAppOptions = {}): Promise<TestApp> {
  const withKeys = options.keys ?? true;
  const dir = existingDir ?? (await makeTempDir());
  // As deployed: bound to every interface, so every /v1 request needs credentials.
  const config = loadConfig(
    { STORAGE: 'volume', STORAGE_PATH: path.join(dir, 'files'), TMPDIR: dir, LOG_LEVEL: 'debug', HOST: '0.0.0.0', SECRET_KEY: TEST_SECRET_KEY, ...env },
    dir,
  );
  const logs = new LogCapture();
  const resources = await openResources(config, logs.log);
  const { store, stores, db, catalog, files, queue } = resources;
  const app = createApp({ config, resources, log: logs.log });
  // As `serve` does: /readyz's store check refreshes every STORE_CHECK_INTERVAL.
  resources.readiness.start();
  const tokens = new Map<string, string>();
  const noKeys = () => new Error('this test app was built with { keys: false } (the page server in loopback dev mode): it has no keys to send');
  if (withKeys) for (const owner of TEST_OWNERS) tokens.set(owner, (await resources.keys.create({ owner, scope: 'write', label: 'test' })).token);
  const withToken = (token: string) => request.agent(app).set('Authorization', `Bearer ${token}`);
  return {
    http: (owner = 'anonymous') => {
      if (!withKeys) throw noKeys();
      const token = tokens.get(owner);
      if (!token) throw new Error(`no test key for ${owner}: use one of ${TEST_OWNERS.join(', ')} or t.key()`);
      return withToken(token);
    },
    key: async (owner, scope = 'write', options = {}) => {
      if (!withKeys) throw noKeys();
      return (await resources.keys.create({ owner, scope, label: 'test', expiresAt: options.expiresAt })).token;
    },
    withToken,
    startTaskWorker: (options = {}) => {
      const worker = new Worker({
        queue,
        files,
        log: logs.log,
        handlers: resources.handlers,
        concurrency: 1,
        leaseMs: 10_000,
        stallMs: config.tasks.stallMs,
        pollMs: 20,
        retryBaseMs: options.retryBaseMs,
      });
      worker.start();
      return worker;
    },
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
      if (logs.malformed.length) throw new Error(`log lines that name a key twice:\n${logs.malformed.join('\n')}`);
    },
  };
}

/** All file records in the catalog, any owner or status. */
export async function allRecords(db: CatalogDb) {
  return db.selectFrom('files').selectAll().execute();
}
