/** libpq's sslmode values, plus `no-verify` (node-postgres' spelling of "encrypt, don't verify"). */
export const SSL_MODES = ['disable', 'prefer', 'require', 'no-verify', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

export interface PostgresSettings {
  url: string;
  poolSize: number;
  /** From `?sslmode=` in the URL, else PGSSLMODE; undefined: no TLS. */
  sslMode?: SslMode;
}

/** The catalog (and task queue) database: the embedded SQLite file, or a PostgreSQL server. */
export type DatabaseSettings = { kind: 'sqlite'; path: string } | ({ kind: 'postgres' } & PostgresSettings);

/** The URL without its password, for logs. */
export function describeDatabase(settings: DatabaseSettings): string {
  if (settings.kind === 'sqlite') return settings.path;
  const url = new URL(settings.url);
  if (url.password) url.password = '***';
  return url.toString();
}
