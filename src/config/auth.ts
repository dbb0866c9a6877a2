import { z } from 'zod';
import { ConfigError } from '../errors';

export interface JwtSettings {
  /** HS256 shared secret, or... */
  secret?: string;
  /** ...a JWKS URL (RS256, ES256, EdDSA), fetched with a timeout and cached. */
  jwksUrl?: string;
  issuer?: string;
  audience?: string;
  /** The claim naming the owner (`sub` by default). */
  ownerClaim: string;
  jwksTimeoutMs: number;
  /** How soon a token naming an unknown `kid` may fetch the JWKS again (a rotation); bounds fetches a stranger can cause. */
  jwksRefetchMs: number;
}

export interface AuthSettings {
  /** Set when the host app's JWTs are accepted. */
  jwt?: JwtSettings;
  /** SECRET_KEY first, then SECRET_KEY_PREVIOUS: links and sessions signed with either are accepted. */
  secretKeys: string[];
  /** Whether the server binds only to a loopback address: the one place dev mode may apply. */
  loopback: boolean;
  /** Failed authentication attempts allowed per client address per window. */
  failureLimit: { max: number; windowMs: number };
  /** CORS_ORIGINS: browser origins allowed to call the API. */
  corsOrigins: string[];
}

const MIN_SECRET = 32;

/** The access-control variables, spread into the one config schema. */
export function authFields(parsers: { positiveInt: (what: string) => z.ZodType<number, string> }) {
  return {
    SECRET_KEY: z.string().min(MIN_SECRET, `must be at least ${MIN_SECRET} characters (generate one with: openssl rand -base64 48)`).optional(),
    SECRET_KEY_PREVIOUS: z.string().min(MIN_SECRET, `must be at least ${MIN_SECRET} characters`).optional(),
    AUTH_JWT_SECRET: z.string().min(MIN_SECRET, `must be at least ${MIN_SECRET} characters (an HS256 key shorter than its hash is weak)`).optional(),
    AUTH_JWKS_URL: z.url({ protocol: /^https?$/, message: 'must be an http(s) URL such as https://app.example.com/.well-known/jwks.json' }).optional(),
    AUTH_JWT_ISSUER: z.string().min(1).optional(),
    AUTH_JWT_AUDIENCE: z.string().min(1).optional(),
    AUTH_JWT_OWNER_CLAIM: z.string().min(1).default('sub'),
    AUTH_JWKS_TIMEOUT_MS: parsers.positiveInt('milliseconds').default(5000),
    AUTH_JWKS_REFETCH_MS: parsers.positiveInt('milliseconds').default(30_000),
    AUTH_FAILURES_PER_15M: parsers.positiveInt('attempts').default(100),
    CORS_ORIGINS: z
      .string()
      .default('')
      .transform((s) => s.split(',').map((o) => o.trim()).filter(Boolean))
      .refine((origins) => origins.every((o) => /^https?:\/\/[^/\s]+$/i.test(o) && URL.canParse(o)), {
        message: 'must be a comma-separated list of origins such as https://app.example.com,http://localhost:5173 (no paths)',
      })
      // As browsers send Origin: lower-case host, no default port.
      .transform((origins) => [...new Set(origins.map((o) => new URL(o).origin))]),
  };
}

type Parsed = z.output<z.ZodObject<ReturnType<typeof authFields>>>;

/** Loopback: 127.0.0.0/8, ::1 and localhost. Anything else is reachable from another machine. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export function readAuth(e: Parsed, host: string): AuthSettings {
  const loopback = isLoopback(host);
  const problems: string[] = [];
  if (e.AUTH_JWT_SECRET && e.AUTH_JWKS_URL) problems.push('AUTH_JWKS_URL: set either AUTH_JWT_SECRET (HS256) or AUTH_JWKS_URL, not both');
  if (!loopback && !e.SECRET_KEY) {
    problems.push(`SECRET_KEY: required when HOST is ${host} (not loopback): it signs download links and page sessions (generate one with: openssl rand -base64 48)`);
  }
  if (e.SECRET_KEY_PREVIOUS && !e.SECRET_KEY) problems.push('SECRET_KEY: required with SECRET_KEY_PREVIOUS (the new key signs, the previous one is still accepted)');
  if (problems.length) throw new ConfigError(problems);
  const secret = e.AUTH_JWT_SECRET;
  const jwksUrl = e.AUTH_JWKS_URL;
  return {
    jwt:
      secret || jwksUrl
        ? { secret, jwksUrl, issuer: e.AUTH_JWT_ISSUER, audience: e.AUTH_JWT_AUDIENCE, ownerClaim: e.AUTH_JWT_OWNER_CLAIM, jwksTimeoutMs: e.AUTH_JWKS_TIMEOUT_MS, jwksRefetchMs: e.AUTH_JWKS_REFETCH_MS }
        : undefined,
    secretKeys: [e.SECRET_KEY, e.SECRET_KEY_PREVIOUS].filter((k): k is string => k !== undefined),
    loopback,
    failureLimit: { max: e.AUTH_FAILURES_PER_15M, windowMs: 15 * 60_000 },
    corsOrigins: e.CORS_ORIGINS,
  };
}
