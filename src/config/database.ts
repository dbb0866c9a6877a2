import { z } from 'zod';
import { type DatabaseSettings, SSL_MODES, type SslMode } from '../catalog/database-settings';

/** The database variables, spread into the one config schema. */
export function databaseFields(parsers: { positiveInt: (what: string) => z.ZodType<number, string> }) {
  return {
    DATABASE_URL: z
      .url({ protocol: /^postgres(ql)?$/, message: 'must be a postgres:// URL such as postgres://user:password@host:5432/stowage' })
      .refine((u) => URL.canParse(u), 'is not a URL that can be parsed (check the host and any special characters in the password: percent-encode them)')
      .refine((u) => {
        const mode = URL.canParse(u) ? new URL(u).searchParams.get('sslmode') : null;
        return mode === null || (SSL_MODES as readonly string[]).includes(mode);
      }, `sslmode must be one of ${SSL_MODES.join(', ')}`)
      .optional(),
    DATABASE_POOL_SIZE: parsers
      .positiveInt('connections')
      .refine((n) => n <= 1000, 'must be at most 1000 connections')
      // The expiry sweep holds one connection (its lock) while it works on another.
      .refine((n) => n >= 2, 'must be at least 2 connections (the expiry sweep holds one for its lock while it works on another)')
      .default(10),
    // Read here (not by the pg driver) so a URL the platform sets without ?sslmode can still use TLS.
    PGSSLMODE: z.enum(SSL_MODES, { message: `must be one of ${SSL_MODES.join(', ')}` }).optional(),
  };
}

type Fields = ReturnType<typeof databaseFields>;
type Parsed = z.output<z.ZodObject<Fields>>;

/** PostgreSQL when DATABASE_URL is set; otherwise the embedded SQLite file at `sqlitePath`. */
export function readDatabase(e: Parsed, sqlitePath: string): DatabaseSettings {
  if (!e.DATABASE_URL) return { kind: 'sqlite', path: sqlitePath };
  const inUrl = new URL(e.DATABASE_URL).searchParams.get('sslmode') as SslMode | null;
  return { kind: 'postgres', url: e.DATABASE_URL, poolSize: e.DATABASE_POOL_SIZE, sslMode: inUrl ?? e.PGSSLMODE };
}
