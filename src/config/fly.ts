import { z } from 'zod';
import type { Placement } from '../catalog/placement';
import { ConfigError } from '../errors';

/** Fly's variables (set on every Machine) and the FLY_REPLAY switch, spread into the schema. */
export function flyFields() {
  return {
    FLY_MACHINE_ID: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be a Fly Machine id').optional(),
    FLY_REGION: z.string().regex(/^[a-z0-9-]{1,32}$/, 'must be a Fly region code such as iad').optional(),
    FLY_REPLAY: z.enum(['auto', 'on', 'off'], { message: 'must be auto, on or off' }).default('auto'),
  };
}

type Parsed = { STORAGE: string } & z.output<z.ZodObject<ReturnType<typeof flyFields>>>;

/**
 * Placement is on for a volume store on Fly (FLY_MACHINE_ID set; `auto`) or when forced `on`:
 * a volume is one Machine's disk, so a file's record must say which Machine holds it. Off for
 * any other store, whose blobs every instance can reach.
 */
export function readPlacement(e: Parsed): Placement | undefined {
  if (e.FLY_REPLAY === 'off' || e.STORAGE !== 'volume') return undefined;
  if (!e.FLY_MACHINE_ID) {
    if (e.FLY_REPLAY === 'on') throw new ConfigError(['FLY_MACHINE_ID: required with FLY_REPLAY=on (Fly sets it on every Machine)']);
    return undefined;
  }
  return { machineId: e.FLY_MACHINE_ID, region: e.FLY_REGION ?? null };
}
