import { z } from 'zod';
import { parseLifetime } from '../files/lifetime';
import { parseDuration } from './units';

/** REPORT_TTL and SWEEP_INTERVAL, spread into the one config schema. */
export function expiryFields() {
  return {
    REPORT_TTL: z
      .string()
      .transform((value, ctx): number | null => {
        const v = value.trim().toLowerCase();
        if (v === 'never' || v === '0') return null;
        const ms = parseLifetime(v);
        if (ms === undefined) {
          ctx.addIssue({ code: 'custom', message: 'must be a duration from 1s to 36500d (e.g. 30d, 12h), or never (0) to keep report outputs until deleted' });
          return z.NEVER;
        }
        return ms;
      })
      .default(30 * 86_400_000),
    SWEEP_INTERVAL: z
      .string()
      .transform((value, ctx) => {
        const ms = parseDuration(value);
        if (ms === undefined || ms < 1000) {
          ctx.addIssue({ code: 'custom', message: 'must be a duration of at least 1s (e.g. 1m)' });
          return z.NEVER;
        }
        return ms;
      })
      .default(60_000),
  };
}

export interface ExpirySettings {
  /** How long report outputs are kept (REPORT_TTL) unless the request says; null: until deleted. */
  reportTtlMs: number | null;
  /** How often the expiry sweep runs (SWEEP_INTERVAL). */
  sweepIntervalMs: number;
}

export function readExpiry(e: { REPORT_TTL: number | null; SWEEP_INTERVAL: number }): ExpirySettings {
  return { reportTtlMs: e.REPORT_TTL, sweepIntervalMs: e.SWEEP_INTERVAL };
}
