import { execFile } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Env } from '../../src/config';
import { freePort } from './service';

const run = promisify(execFile);
const PG_ROOT = '/usr/lib/postgresql';

/** A real PostgreSQL server from Debian's binaries in a throwaway directory, on 127.0.0.1. */
export interface PostgresServer {
  port: number;
  /** A database created for this server's user (the test file's own). */
  url: string;
  /** Creates another empty database (with `createdb`) and returns its URL. */
  createDatabase(): Promise<string>;
  /** Kills the server as a crash would (`pg_ctl stop -m immediate`): connections drop, queries in flight fail. */
  crash(): Promise<void>;
  /** Starts it again after `crash`, on the same port and data directory. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** The newest installed server's bin directory (Debian: /usr/lib/postgresql/<major>/bin). */
function binDir(): string {
  const majors = fs.existsSync(PG_ROOT) ? fs.readdirSync(PG_ROOT).filter((v) => fs.existsSync(path.join(PG_ROOT, v, 'bin', 'initdb'))) : [];
  if (majors.length === 0) throw new Error(`No PostgreSQL server binaries under ${PG_ROOT}: install Debian's postgresql package (.ci/run does).`);
  return path.join(PG_ROOT, majors.sort((a, b) => Number(b) - Number(a))[0], 'bin');
}

/** Root cannot run postgres: as root, every binary runs as the `postgres` user. */
const asRoot = process.getuid?.() === 0;
function pg(bin: string, args: string[], env?: Record<string, string>) {
  const file = path.join(binDir(), bin);
  const options = { env: { ...process.env, ...env } };
  return asRoot ? run('runuser', ['-u', 'postgres', '--', file, ...args], options) : run(file, args, options);
}

let databases = 0;

/**
 * A self-signed certificate for 127.0.0.1, as managed servers such as Heroku Postgres have: TLS
 * that only `sslmode=require` (encrypt, don't verify) accepts. Owned by the server's user, as
 * PostgreSQL insists for the key.
 */
async function selfSignedCertificate(dir: string): Promise<string[]> {
  const cert = path.join(dir, 'server.crt');
  const key = path.join(dir, 'server.key');
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-keyout', key, '-out', cert]);
  await fsp.chmod(key, 0o600);
  if (asRoot) await run('chown', ['postgres:postgres', cert, key]);
  return ['-c ssl=on', `-c ssl_cert_file=${cert}`, `-c ssl_key_file=${key}`];
}

/**
 * `password`: the server checks it (scram-sha-256) instead of trusting every connection.
 * `tls`: TCP connections must use TLS (`hostssl`), with a self-signed certificate.
 */
export async function startPostgres(options: { password?: string; tls?: boolean } = {}): Promise<PostgresServer> {
  const dir = await fsp.mkdtemp('/tmp/stowage-pg-');
  if (asRoot) await run('chown', ['postgres:postgres', dir]);
  const data = path.join(dir, 'data');
  const method = options.password ? 'scram-sha-256' : 'trust';
  const auth = options.password ? ['-A', method, `--pwfile=${path.join(dir, 'pw')}`] : ['-A', method];
  if (options.password) await fsp.writeFile(path.join(dir, 'pw'), options.password, { mode: 0o644 });
  await pg('initdb', ['-D', data, '-U', 'postgres', ...auth, '-E', 'UTF8', '--no-locale', '--no-sync']);
  const tls = options.tls ? await selfSignedCertificate(dir) : [];
  if (options.tls) {
    // Only TLS over TCP: a client that doesn't ask for it is refused.
    await fsp.writeFile(path.join(data, 'pg_hba.conf'), `local all all ${method}\nhostssl all all 127.0.0.1/32 ${method}\n`);
  }
  const port = await freePort();
  // fsync off: a test server's data is thrown away, and every commit gets cheap.
  const serverOptions = [`-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=off -c max_connections=200`, ...tls].join(' ');
  const start = () =>
    pg('pg_ctl', ['-D', data, '-l', path.join(dir, 'server.log'), '-w', '-t', '30', '-o', serverOptions, 'start'], options.password ? { PGPASSWORD: options.password } : undefined);
  await start();
  const user = options.password ? `postgres:${encodeURIComponent(options.password)}` : 'postgres';
  const urlFor = (name: string) => `postgres://${user}@127.0.0.1:${port}/${name}`;
  const createDatabase = async () => {
    const name = `stowage_test_${process.pid}_${++databases}`;
    await pg('createdb', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', name], options.password ? { PGPASSWORD: options.password } : undefined);
    return urlFor(name);
  };
  const url = await createDatabase();
  return {
    port,
    url,
    createDatabase,
    async crash() {
      await pg('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
    },
    async restart() {
      await start();
    },
    async stop() {
      await pg('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
      await fsp.rm(dir, { recursive: true, force: true });
    },
  };
}

export type CatalogKind = 'sqlite' | 'postgres';
/** The catalog suites run against each: `describe.each(CATALOG_DATABASES)`. */
export const CATALOG_DATABASES: CatalogKind[] = ['sqlite', 'postgres'];

/**
 * For a describe block over one catalog database: on PostgreSQL it starts a server for the block
 * (stopped after it). `env()` gives each test a fresh, empty catalog: a new PostgreSQL database,
 * or nothing extra for SQLite (buildTestApp's fresh temp dir holds a new file).
 */
export function useCatalogDatabase(kind: CatalogKind): { env(): Promise<Env> } {
  let server: PostgresServer | undefined;
  if (kind === 'postgres') {
    beforeAll(async () => {
      server = await startPostgres();
    });
    afterAll(async () => server?.stop());
  }
  return {
    async env() {
      if (kind === 'sqlite') return {};
      if (!server) throw new Error('the PostgreSQL server did not start');
      return { DATABASE_URL: await server.createDatabase() };
    },
  };
}
