import { z } from 'zod';
import { ConfigError } from '../errors';
import { durationSetting as duration } from './units';

/** The operator's webhook endpoint and how deliveries are made. */
export interface WebhookSettings {
  /** WEBHOOK_URL and WEBHOOK_SECRET: the endpoint that receives every owner's events. */
  endpoint?: { url: string; secret: string };
  /** WEBHOOK_TIMEOUT: one attempt (connect, answer, body) must end within this. */
  timeoutMs: number;
  /** WEBHOOK_RETRY_DELAY: the wait after a first failed attempt; it doubles with each attempt, up to an hour. */
  retryDelayMs: number;
  /** WEBHOOK_GIVE_UP: a delivery still failing this long after its event is given up. */
  giveUpMs: number;
}

/** Standard Webhooks secrets: `whsec_` and base64 of 24 to 64 random bytes. */
export function isWebhookSecret(value: string): boolean {
  const m = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(value);
  if (!m || m[1].length % 4 !== 0) return false;
  const bytes = Buffer.from(m[1], 'base64').length;
  return bytes >= 24 && bytes <= 64;
}

/**
 * What is wrong with a webhook endpoint's URL, or undefined. No `user:password@`: fetch refuses
 * it, and the error would carry the password into the logs and the deliveries list.
 */
export function webhookUrlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be an http:// or https:// URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must be an http:// or https:// URL';
  if (url.username || url.password) return 'must not carry a user name or password (deliveries are signed instead)';
  return undefined;
}

/** The variables, spread into the one config schema. */
export function webhookFields() {
  return {
    WEBHOOK_URL: z
      .string()
      .superRefine((value, ctx) => {
        const problem = webhookUrlProblem(value);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      })
      .optional(),
    WEBHOOK_SECRET: z
      .string()
      .refine(isWebhookSecret, 'must be whsec_ followed by base64 of 24 to 64 random bytes (e.g. whsec_ and the output of openssl rand -base64 32)')
      .optional(),
    WEBHOOK_TIMEOUT: duration(100, '5s').default(5000),
    WEBHOOK_RETRY_DELAY: duration(10, '10s').default(10_000),
    WEBHOOK_GIVE_UP: duration(1000, '24h').default(86_400_000),
  };
}

/** Checks the variables against each other: a URL needs its secret, and a secret its URL. */
export function readWebhooks(e: {
  WEBHOOK_URL?: string;
  WEBHOOK_SECRET?: string;
  WEBHOOK_TIMEOUT: number;
  WEBHOOK_RETRY_DELAY: number;
  WEBHOOK_GIVE_UP: number;
}): WebhookSettings {
  if (e.WEBHOOK_URL && !e.WEBHOOK_SECRET) {
    throw new ConfigError(['WEBHOOK_SECRET: must be set with WEBHOOK_URL (the key deliveries are signed with, whsec_...)']);
  }
  if (e.WEBHOOK_SECRET && !e.WEBHOOK_URL) {
    throw new ConfigError(['WEBHOOK_URL: must be set with WEBHOOK_SECRET (the endpoint that receives every event)']);
  }
  return {
    endpoint: e.WEBHOOK_URL && e.WEBHOOK_SECRET ? { url: e.WEBHOOK_URL, secret: e.WEBHOOK_SECRET } : undefined,
    timeoutMs: e.WEBHOOK_TIMEOUT,
    retryDelayMs: e.WEBHOOK_RETRY_DELAY,
    giveUpMs: e.WEBHOOK_GIVE_UP,
  };
}
