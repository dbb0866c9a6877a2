import path from 'node:path';
import { describeDatabase } from '../catalog/database-settings';
import type { Config } from '../config';

/**
 * The one line a person starting the server reads, beside the JSON log:
 * `stowage listening on http://localhost:3000 (storage: volume ./data/files, catalog: ./data/stowage.db)`.
 * Paths under the working directory are shown relative to it; a PostgreSQL password never is.
 */
export function listeningLine(config: Config, port: number, cwd = process.cwd()): string {
  return `stowage listening on ${serverUrl(config.host, port)} (storage: ${describeStorage(config, cwd)}, catalog: ${describeCatalog(config, cwd)})`;
}

/** A URL a browser on this machine can open: wildcard addresses become `localhost`. */
export function serverUrl(host: string, port: number): string {
  const name = ['0.0.0.0', '::', '[::]', ''].includes(host) ? 'localhost' : host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return `http://${name}:${port}`;
}

/**
 * Whether to print that line: for a person, on a terminal or through `npm start` (whatever its
 * output is piped to). Not for a supervisor (Docker, Heroku, Fly, systemd), whose logs are the
 * JSON lines on stdout.
 */
export function wantsListeningLine(config: Pick<Config, 'startedByNpm'>, stderr: { isTTY?: boolean } = process.stderr): boolean {
  return stderr.isTTY === true || config.startedByNpm;
}

function describeStorage(config: Config, cwd: string): string {
  const { driver, s3 } = config.storage;
  if (driver === 'memory') return 'memory';
  if (driver === 's3') return s3 ? `s3 s3://${s3.bucket}/${s3.prefix ?? ''}${s3.endpoint ? ` at ${s3.endpoint}` : ''}` : 's3';
  return `${driver} ${shortPath(config.storage.path, cwd)}`;
}

function describeCatalog(config: Config, cwd: string): string {
  const db = config.database;
  if (db.kind === 'postgres') return describeDatabase(db);
  return db.path === ':memory:' ? 'in memory' : shortPath(db.path, cwd);
}

function shortPath(file: string, cwd: string): string {
  const rel = path.relative(cwd, file);
  const outside = rel === '' || rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel);
  return outside ? file : `.${path.sep}${rel}`;
}
