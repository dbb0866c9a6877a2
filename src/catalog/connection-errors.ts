import type { DatabaseSettings } from './database-settings';
import { describeDatabase } from './database-settings';

/** The innermost error of a `cause` chain that carries a code (pg's SQLSTATE or a system errno). */
function rootCause(err: unknown): { code?: string; message: string } {
  let current = err as { code?: unknown; message?: unknown; cause?: unknown } | undefined;
  let found: { code?: string; message: string } = { message: String((err as Error)?.message ?? err) };
  for (let depth = 0; current && depth < 10; depth++, current = current.cause as typeof current) {
    if (typeof current.code === 'string') return { code: current.code, message: String(current.message) };
    if (typeof current.message === 'string') found = { message: current.message };
  }
  return found;
}

/**
 * One line naming DATABASE_URL and what to fix, for a PostgreSQL that can't be used at start-up
 * (a wrong password, a missing database, nothing listening, an unknown host), with the password
 * never shown. Undefined for anything else.
 */
export function databaseProblem(err: unknown, settings: DatabaseSettings): string | undefined {
  if (settings.kind !== 'postgres') return undefined;
  const url = new URL(settings.url);
  const where = `${url.hostname}:${url.port || '5432'}`;
  const user = decodeURIComponent(url.username);
  const database = decodeURIComponent(url.pathname.slice(1));
  const { code, message } = rootCause(err);
  const line = (why: string) => `DATABASE_URL: ${why} (${describeDatabase(settings)})`;
  switch (code) {
    case '28P01':
    case '28000':
      return line(`PostgreSQL at ${where} refused user "${user}": wrong password or user`);
    case '3D000':
      return line(`database "${database}" does not exist on ${where} (create it, or fix the name)`);
    case 'ECONNREFUSED':
      return line(`nothing accepts connections at ${where} (is PostgreSQL running there?)`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return line(`host "${url.hostname}" not found`);
    case 'ETIMEDOUT':
      return line(`no answer from ${where}`);
  }
  if (/timeout/i.test(message)) return line(`no answer from ${where} within the connection timeout`);
  if (/SSL|TLS|certificate/i.test(message)) return line(`TLS failed: ${message} (see sslmode / PGSSLMODE)`);
  return undefined;
}
