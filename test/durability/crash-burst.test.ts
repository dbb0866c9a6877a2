import { randomInt } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { type CatalogKind, type PostgresServer, startPostgres } from '../helpers/postgres';
import { bearer, createKeyWithCli, freePort, runService, type ServiceProcess } from '../helpers/service';
import { randomData, sha256 } from '../helpers/streams';
import { makeTempDir } from '../helpers/tmp';

/**
 * The guarantee under crashes: the built `serve` (volume store; SQLite, then PostgreSQL catalog)
 * takes a burst of concurrent 16 KiB uploads and is killed with SIGKILL at a random point, round
 * after round on the same data. After each kill a new server starts on it and:
 * - every upload that got a 201 is listed `ready` with its sha256 and downloads byte-identical;
 * - an upload that got no answer is there whole (all its files, right bytes) or not at all;
 * - nothing else is listed (no pending record outlives the start-up sweep, no stranger);
 * and `stowage doctor --verify` finds no ready record without its blob, right after a kill and
 * at the end.
 *
 * Random points are drawn from a seed shown in the test's name: rerun one with
 * `CRASHBURST_SEED=<seed> npx jest test/durability`. Run time bounds the rounds: on a 2-core
 * machine a round takes 1.5 to 3 s (the server's start is about 1 s of it, a PostgreSQL round a
 * little more), so 7 + 4 rounds, a doctor twice per catalog and PostgreSQL's start keep this file
 * at 35 to 40 s.
 */

const SEED = process.env.CRASHBURST_SEED ? Number(process.env.CRASHBURST_SEED) : randomInt(2 ** 31);
const ROUNDS: Record<CatalogKind, number> = { sqlite: 7, postgres: 4 };
const FILE_BYTES = 16 * 1024;
const CONCURRENCY = 16;
/** Every this-many-th request carries two files (all or nothing). */
const PAIR_EVERY = 6;

/** mulberry32: small, seeded, good enough to pick kill points. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/**
 * When a round's server dies: right after its nth 201, or a delay after its first (a server just
 * started takes a while to answer the first uploads: a delay from the burst's start would often
 * kill it before any).
 */
type KillPoint = { afterCreated: number } | { msAfterFirst: number };
const describePoint = (p: KillPoint) => ('afterCreated' in p ? `kill after the ${p.afterCreated}th 201` : `kill ${p.msAfterFirst} ms after the first 201`);

interface SentFile {
  name: string;
  sha256: string;
}
interface SentRequest {
  files: SentFile[];
  /** `created`: answered 201 with these ids; `unanswered`: the server died first. */
  outcome: 'pending' | 'created' | 'unanswered';
  ids?: string[];
}
interface Listed {
  id: string;
  name: string;
  size: number;
  sha256: string | null;
  status: string;
}
interface DoctorJson {
  ok: boolean;
  problems: { kind: string; reason: string }[];
}

describe.each(['sqlite', 'postgres'] as CatalogKind[])('kill -9 during a burst of small uploads, %s catalog', (kind) => {
  let postgres: PostgresServer | undefined;
  let dir: string;
  const running: ServiceProcess[] = [];

  beforeAll(async () => {
    if (kind === 'postgres') postgres = await startPostgres();
  });
  afterAll(async () => postgres?.stop());
  beforeEach(async () => {
    dir = await makeTempDir('stowage-crashburst-');
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((s) => s.stop()));
    await fsp.rm(dir, { recursive: true, force: true });
  });

  const seed = kind === 'sqlite' ? SEED : SEED ^ 0x5bd1e995;

  it(`every 201 survives, nothing is half-written (seed ${SEED}, ${ROUNDS[kind]} rounds)`, async () => {
    const next = random(seed);
    const points = Array.from({ length: ROUNDS[kind] }, (): KillPoint => (next() < 0.5 ? { afterCreated: 1 + Math.floor(next() * 60) } : { msAfterFirst: Math.floor(next() * 300) }));
    const env: Record<string, string> = {
      STORAGE: 'volume',
      STORAGE_PATH: path.join(dir, 'files'),
      HOME: dir,
      HOST: '127.0.0.1',
      // The start-up sweep's summary is a debug line: the sign that a killed server's pending uploads are gone.
      LOG_LEVEL: 'debug',
      WORKERS: '0',
      UPLOADS_PER_CLIENT: String(CONCURRENCY),
      ...(postgres ? { DATABASE_URL: await postgres.createDatabase() } : {}),
    };
    const auth = bearer(await createKeyWithCli(env, 'alice', 'write', { cwd: dir }));
    const requests: SentRequest[] = [];
    const byName = new Map<string, { file: SentFile; request: SentRequest }>();
    const downloaded = new Set<string>();

    const serve = async () => {
      const port = await freePort();
      const svc = runService(['serve'], { cwd: dir, env: { ...env, PORT: String(port) } });
      running.push(svc);
      await svc.waitFor((l) => l.msg === 'listening');
      await svc.waitFor((l) => l.msg === 'leftover sweep');
      return { svc, base: `http://127.0.0.1:${port}` };
    };

    const doctor = async (...args: string[]) => {
      const svc = runService(['doctor', '--json', ...args], { cwd: dir, env });
      const code = await svc.exited;
      return { code, report: svc.lines[0] as unknown as DoctorJson };
    };

    /** What a user sees after a restart: the listing, each record's bytes, all-or-nothing requests. */
    const verify = async (base: string) => {
      const listed: Listed[] = [];
      for (let cursor: string | null = null; ; ) {
        const res = await fetch(`${base}/v1/files?limit=200${cursor ? `&cursor=${cursor}` : ''}`, { headers: auth });
        expect(res.status).toBe(200);
        const page = (await res.json()) as { files: Listed[]; nextCursor: string | null };
        listed.push(...page.files);
        if (!(cursor = page.nextCursor)) break;
      }
      const present = new Map<string, Listed>();
      for (const record of listed) {
        const sent = byName.get(record.name);
        expect({ name: record.name, known: sent !== undefined }).toEqual({ name: record.name, known: true });
        expect(record).toMatchObject({ status: 'ready', size: FILE_BYTES, sha256: sent!.file.sha256 });
        present.set(record.name, record);
      }
      for (const request of requests) {
        const found = request.files.filter((f) => present.has(f.name));
        if (request.outcome === 'created') {
          expect(request.files.map((f) => [f.name, present.get(f.name)?.id])).toEqual(request.files.map((f, i) => [f.name, request.ids![i]]));
        } else {
          expect({ sent: request.files.map((f) => f.name), allOrNone: [0, request.files.length].includes(found.length) }).toEqual({ sent: request.files.map((f) => f.name), allOrNone: true });
        }
      }
      // Bytes of the records not downloaded in an earlier round (the doctor's --verify hashes them all at the end).
      const fresh = listed.filter((r) => !downloaded.has(r.id));
      await inParallel(fresh, async (record) => {
        const res = await fetch(`${base}/v1/files/${record.id}/content`, { headers: auth });
        expect(res.status).toBe(200);
        expect({ name: record.name, sha256: sha256(Buffer.from(await res.arrayBuffer())) }).toEqual({ name: record.name, sha256: byName.get(record.name)!.file.sha256 });
        downloaded.add(record.id);
      });
      // Temp files of the killed writes are swept with their records.
      expect(await fsp.readdir(path.join(dir, 'files', '.tmp'))).toEqual([]);
    };

    /** Uploads from CONCURRENCY clients until the server is killed at `point`, noting each request's outcome. */
    const burst = async (round: number, svc: ServiceProcess, base: string, point: KillPoint) => {
      let dead = false;
      let created = 0;
      const kill = () => {
        if (dead) return;
        dead = true;
        svc.child.kill('SIGKILL');
      };
      let timer: NodeJS.Timeout | undefined;
      let seq = 0;
      const client = async () => {
        while (!dead) {
          const n = seq++;
          const count = n % PAIR_EVERY === PAIR_EVERY - 1 ? 2 : 1;
          const form = new FormData();
          const request: SentRequest = { files: [], outcome: 'pending' };
          for (let k = 0; k < count; k++) {
            const data = randomData(FILE_BYTES);
            const file = { name: `r${round}-${n}-${k}.bin`, sha256: sha256(data) };
            request.files.push(file);
            byName.set(file.name, { file, request });
            form.append('file', new Blob([data]), file.name);
          }
          requests.push(request);
          try {
            const res = await fetch(`${base}/v1/files`, { method: 'POST', body: form, headers: auth });
            const body = (await res.json()) as { files?: { id: string }[] };
            // Any answer but 201 before the kill is a failure of its own: a crash gives no answer.
            expect({ status: res.status, body }).toEqual({ status: 201, body: expect.anything() });
            request.outcome = 'created';
            request.ids = body.files!.map((f) => f.id);
            created++;
            if ('afterCreated' in point && created === point.afterCreated) kill();
            if ('msAfterFirst' in point && created === 1) timer = setTimeout(kill, point.msAfterFirst);
          } catch (err) {
            if (!dead) throw err;
            request.outcome = 'unanswered';
          }
        }
      };
      // A cap on the round, should the server stop answering without dying.
      const cap = setTimeout(kill, 10_000);
      try {
        await Promise.all(Array.from({ length: CONCURRENCY }, client));
      } finally {
        kill();
        clearTimeout(timer);
        clearTimeout(cap);
      }
      expect(await svc.exited).toBeNull();
    };

    /** Says where a failure happened, with the seed that reproduces it. */
    const during = async <T>(what: string, work: () => Promise<T>): Promise<T> => {
      try {
        return await work();
      } catch (err) {
        (err as Error).message = `seed ${SEED}, ${kind} catalog, ${what}:\n${(err as Error).message}`;
        throw err;
      }
    };

    let svc: ServiceProcess | undefined;
    for (let round = 0; round <= points.length; round++) {
      const started = await serve();
      svc = started.svc;
      const last = round > 0 ? `after round ${round - 1}'s ${describePoint(points[round - 1])}` : 'before any kill';
      await during(`verifying ${last}`, () => verify(started.base));
      if (round === points.length) break;
      await during(`round ${round}'s burst (${describePoint(points[round])})`, () => burst(round, started.svc, started.base, points[round]));
      if (round === points.length - 1) {
        // Right after the last kill, before any sweep: a ready record never lacks its blob.
        await during('the doctor right after the last kill', async () => {
          const { report } = await doctor('--verify');
          expect(report.problems.filter((p) => !['stale_pending', 'temp_leftover'].includes(p.kind))).toEqual([]);
        });
      }
    }

    // The rounds did kill uploads in flight, and did answer some.
    expect(requests.filter((r) => r.outcome === 'unanswered').length).toBeGreaterThan(0);
    expect(requests.filter((r) => r.outcome === 'created').length).toBeGreaterThan(ROUNDS[kind]);
    // With the killed uploads swept, the doctor finds nothing at all: every blob matches its record.
    const after = await doctor('--verify');
    expect(after.report).toMatchObject({ ok: true, problems: [] });
    expect(after.code).toBe(0);
    expect(await svc!.stop()).toBe(0);
  }, 120_000);
});

/** Runs `work` over `items`, CONCURRENCY at a time. */
async function inParallel<T>(items: T[], work: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: Math.min(CONCURRENCY, items.length) }, async () => {
      while (i < items.length) await work(items[i++]);
    }),
  );
}
