import { z } from 'zod';

const UNITS: Record<string, number> = {
  b: 1,
  kb: 1024,
  kib: 1024,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
};

/** "1048576", "10mb", "1 GiB": units are binary (1 kb = 1024 bytes), as in the `bytes` package. */
export function parseBytes(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  if (!m) return undefined;
  const unit = UNITS[(m[2] || 'b').toLowerCase()];
  if (unit === undefined) return undefined;
  return Math.floor(Number(m[1]) * unit);
}

const UNITS_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** "90s", "15m", "1h", "7d", or a bare number of seconds; undefined when it is none of those. */
export function parseDuration(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/i.exec(text);
  if (!m) return undefined;
  return Math.round(Number(m[1]) * UNITS_MS[(m[2] ?? 's').toLowerCase()]);
}

/** A duration variable (`30s`, `5m`, `100ms`) of at least `min` ms, in milliseconds; the message gives `example`. */
export const durationSetting = (min: number, example: string) =>
  z.string().transform((value, ctx) => {
    const ms = parseDuration(value);
    if (ms === undefined || ms < min) {
      ctx.addIssue({ code: 'custom', message: `must be a duration of at least ${min >= 1000 ? `${min / 1000}s` : `${min}ms`} (e.g. ${example})` });
      return z.NEVER;
    }
    return ms;
  });
