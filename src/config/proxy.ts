import { isIP } from 'node:net';
import { z } from 'zod';

/**
 * Express's `trust proxy`: which hops in front of the process may say who the client is
 * (`X-Forwarded-For`) and whether it came over https (`X-Forwarded-Proto`). `false` believes
 * only the socket; a number trusts that many proxies nearest the process; a list trusts those
 * addresses, subnets or Express's names (`loopback`, `linklocal`, `uniquelocal`); `true` trusts
 * every hop, so any client can choose the address its failed attempts are counted against.
 */
export type TrustProxy = boolean | number | string[];

const NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

function isAddressOrSubnet(entry: string): boolean {
  if (NAMES.has(entry)) return true;
  const [address, bits, extra] = entry.split('/');
  if (extra !== undefined || !isIP(address)) return false;
  if (bits === undefined) return true;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (isIP(address) === 4 ? 32 : 128);
}

/** TRUST_PROXY, spread into the one config schema (the default is decided in readTrustProxy). */
export function proxyFields() {
  return {
    TRUST_PROXY: z
      .string()
      .transform((value, ctx): TrustProxy => {
        const v = value.trim().toLowerCase();
        if (v === 'true') return true;
        if (v === 'false') return false;
        if (/^\d+$/.test(v)) return Number(v) === 0 ? false : Number(v);
        const entries = v.split(',').map((s) => s.trim()).filter(Boolean);
        if (entries.length && entries.every(isAddressOrSubnet)) return entries;
        ctx.addIssue({
          code: 'custom',
          message:
            'must be the number of proxies in front of stowage (1 behind Heroku\'s or Fly\'s router), false, true, or a comma-separated list of proxy addresses/subnets (10.0.0.0/8, loopback, uniquelocal)',
        });
        return z.NEVER;
      })
      .optional(),
  };
}

/**
 * Unset: one hop on Heroku (DYNO) and Fly (FLY_APP_NAME), whose routers are the one proxy in
 * front of every request and append the client's address; elsewhere none, so a client can't
 * claim an address or https by sending the headers itself.
 */
export function readTrustProxy(e: { TRUST_PROXY?: TrustProxy; DYNO?: string; FLY_APP_NAME?: string }): TrustProxy {
  if (e.TRUST_PROXY !== undefined) return e.TRUST_PROXY;
  return e.DYNO || e.FLY_APP_NAME ? 1 : false;
}
