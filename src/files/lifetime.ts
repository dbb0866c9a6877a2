import { parseDuration } from '../config/units';
import { BadRequest } from '../errors';

/** The longest lifetime a file may be given (about 100 years): past it, leave `expiresIn` out. */
export const MAX_LIFETIME_MS = 36_500 * 86_400_000;

/** The header that sets uploaded files' lifetime, as the form field `expiresIn` does. */
export const EXPIRES_IN_HEADER = 'stowage-expires-in';

/** "90s", "15m", "1h", "7d" (or a bare number of seconds) from 1 second to 36500 days, in ms; undefined otherwise. */
export function parseLifetime(text: string): number | undefined {
  const ms = parseDuration(text);
  return ms !== undefined && ms >= 1000 && ms <= MAX_LIFETIME_MS ? ms : undefined;
}

/** A file's lifetime as a client sent it (`where` names the field or header), or 400 `invalid_expires_in`. */
export function lifetimeFrom(value: unknown, where: string): number {
  const ms = typeof value === 'string' ? parseLifetime(value) : undefined;
  if (ms === undefined) {
    throw new BadRequest(
      `${where} must be a duration from 1s to 36500d, such as "90s", "12h" or "7d" (leave it out to keep the file until it is deleted).`,
      'invalid_expires_in',
    );
  }
  return ms;
}
