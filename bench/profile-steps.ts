import fs from 'node:fs';

/** The parts of a V8 `.cpuprofile` (`node --cpu-prof`) read here. */
interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string }; children?: number[] }[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/**
 * Steps of a request, by where the code lives. A sample counts for the step of its innermost
 * frame that belongs to stowage or a dependency (so Node's stream and fs internals count for the
 * code that called them); samples with none count for Node's own module, or V8's pseudo-frames.
 */
const STEPS: [string, RegExp][] = [
  ['multipart parse (busboy, multer, storage engine)', /node_modules\/(busboy|multer|streamsearch|append-field)\/|src\/uploads\//],
  ['sha256', /src\/storage\/(sha256-meter|put-hashed)/],
  ['volume store (open, write, fsync, rename; open to read)', /src\/storage\//],
  ['quotas, webhook endpoints', /src\/(quotas|webhooks)\//],
  ['catalog (kysely, driver)', /node_modules\/(kysely|better-sqlite3|pg|pg-protocol|pg-pool|pg-types|postgres-[a-z]+)\/|src\/catalog\//],
  ['logging (pino)', /node_modules\/(pino|pino-http|pino-std-serializers|sonic-boom|fast-redact|quick-format-unescaped|safe-stable-stringify|fast-safe-stringify|on-exit-leak-free|thread-stream)\/|src\/http\/logging/],
  ['auth (API key lookup, guard)', /src\/auth\//],
  ['metrics (prom-client)', /node_modules\/prom-client\/|src\/metrics\//],
  ['express and middleware', /node_modules\/(express|router|helmet|cors|express-rate-limit|body-parser|finalhandler|send|qs|parseurl|path-to-regexp|type-is|mime-types|mime-db|content-type|content-disposition|accepts|negotiator|fresh|range-parser|on-finished|depd|vary|statuses|http-errors|debug|ee-first|encodeurl|escape-html|cookie|raw-body|media-typer|proxy-addr|forwarded|ipaddr\.js)\/|src\/http\/|src\/app\.ts/],
  ['routes, Files service', /src\/(routes|files)\//],
  ['zod', /node_modules\/zod\//],
];

function stepOf(url: string): string | undefined {
  for (const [step, pattern] of STEPS) if (pattern.test(url)) return step;
  if (/node_modules\/|\/src\//.test(url)) return 'other dependencies and stowage code';
  return undefined;
}

function nodeStep(url: string, name: string): string {
  if (name === '(garbage collector)') return 'garbage collection';
  if (name === '(idle)') return 'idle';
  if (name === '(program)' || name === '(root)') return 'V8 and native (no JS frame)';
  const internal = /^node:(internal\/)?([a-z_]+)/.exec(url)?.[2];
  if (internal) return `Node internals (${internal.replace(/^_/, '').replace(/_.*/, '')})`;
  return 'native code called from Node internals';
}

export interface StepTime {
  step: string;
  ms: number;
}

/**
 * CPU time per step in the samples between `from` and `to` (CLOCK_MONOTONIC microseconds, the
 * clock of both V8's profile and `process.hrtime`, so a benchmark's phases can bound it).
 */
export function stepTimes(profileFile: string, from = 0, to = Infinity): StepTime[] {
  const profile = JSON.parse(fs.readFileSync(profileFile, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const memo = new Map<number, string>();
  const classify = (id: number): string => {
    const known = memo.get(id);
    if (known) return known;
    let fallback: string | undefined;
    let step: string | undefined;
    for (let at: number | undefined = id; at !== undefined && !step; at = parent.get(at)) {
      const { url, functionName } = byId.get(at)!.callFrame;
      step = stepOf(url);
      fallback ??= url || /^\(/.test(functionName) ? nodeStep(url, functionName) : undefined;
    }
    const result = step ?? fallback ?? 'native code called from Node internals';
    memo.set(id, result);
    return result;
  };
  const totals = new Map<string, number>();
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i];
    if (t < from || t > to) continue;
    // A sample stands for the time until the next one.
    const dt = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    const step = classify(profile.samples[i]);
    totals.set(step, (totals.get(step) ?? 0) + dt);
  }
  return [...totals].map(([step, ms]) => ({ step, ms })).sort((a, b) => b.ms - a.ms);
}

/** Microseconds on the clock V8's profiles use. */
export const monotonicMicros = (): number => Number(process.hrtime.bigint() / 1000n);
