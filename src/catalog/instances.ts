import type { Selectable } from 'kysely';
import { type Instance, isRunning, parseInstanceId } from '../instance';
import type { CatalogDb } from './database';
import type { InstancesTable } from './schema';

export type InstanceRow = Selectable<InstancesTable>;

/**
 * How alive the process that wrote something is:
 * - `live`: this process, or one whose heartbeat is recent;
 * - `gone`: no row (every process registers before it writes, and its row goes only when it
 *   stops or is swept), or a pid on this host that no longer runs: what it left can go at once;
 * - `silent`: no heartbeat for SILENT_AFTER_MS, on another host (or its pid was reused): likely
 *   dead, but what it left goes only once older than the grace period (it may be cut off from the
 *   catalog and still writing). Also a process with no row here whose id names this host and a pid
 *   that runs: another service with its own catalog sharing this host's TMPDIR, whose work
 *   directory must not be taken for a dead process's.
 */
export type InstanceState = 'live' | 'gone' | 'silent';

/** How often a process refreshes its row. */
export const HEARTBEAT_MS = 30_000;
/** A process whose row is older than this has missed four heartbeats. */
export const SILENT_AFTER_MS = 4 * HEARTBEAT_MS;

/**
 * The catalog's registry of running processes: this one's row, and the verdict on any other's.
 * A row also says how many task slots the process's workers run, and for which Fly Machine's
 * pinned tasks, so a task nobody can run says so (`workersFor`).
 */
export class Instances {
  private readonly startedAt = new Date().toISOString();
  private taskSlots = 0;
  private machineId: string | null = null;

  constructor(
    private readonly db: CatalogDb,
    readonly self: Instance,
  ) {}

  /** Registers this process, or refreshes its heartbeat (an upsert: a row swept while this process was cut off comes back). */
  async beat(now = new Date()): Promise<void> {
    const { id, host, pid } = this.self;
    const state = { last_seen: now.toISOString(), task_slots: this.taskSlots, machine_id: this.machineId };
    await this.db
      .insertInto('instances')
      .values({ id, host, pid, started_at: this.startedAt, ...state })
      .onConflict((oc) => oc.column('id').doUpdateSet(state))
      .execute();
  }

  /**
   * Records at once that this process's workers run `slots` task slots (0: none, a worker
   * stopping), taking unpinned tasks and those pinned to `machineId`.
   */
  async setTaskSlots(slots: number, machineId: string | null): Promise<void> {
    this.taskSlots = slots;
    this.machineId = machineId;
    await this.beat();
  }

  /**
   * Whether a live process runs workers that can take a task pinned to `machineId` (null: an
   * unpinned task, which any worker takes). This process counts at once; another counts while
   * its heartbeat is recent and, on this host, its pid runs.
   */
  async workersFor(machineId: string | null, now = new Date()): Promise<boolean> {
    if (this.taskSlots > 0 && (machineId === null || machineId === this.machineId)) return true;
    const rows = await this.db
      .selectFrom('instances')
      .select(['id', 'host', 'pid', 'last_seen'])
      .where('task_slots', '>', 0)
      .where('id', '!=', this.self.id)
      .where('last_seen', '>=', new Date(now.getTime() - SILENT_AFTER_MS).toISOString())
      .$if(machineId !== null, (q) => q.where('machine_id', '=', machineId!))
      .execute();
    return rows.some((row) => this.stateOf(row.id, row, now) === 'live');
  }

  /** This process stops: what it wrote is no longer in progress. */
  async deregister(): Promise<void> {
    await this.db.deleteFrom('instances').where('id', '=', this.self.id).execute();
  }

  /** The verdict on an instance whose row (if any) is `row`. */
  stateOf(id: string, row: Pick<InstanceRow, 'host' | 'pid' | 'last_seen'> | undefined, now = new Date()): InstanceState {
    if (id === this.self.id) return 'live';
    if (!row) return this.mayRunHere(id) ? 'silent' : 'gone';
    if (row.host === this.self.host && !isRunning(Number(row.pid))) return 'gone';
    if (row.last_seen < new Date(now.getTime() - SILENT_AFTER_MS).toISOString()) return 'silent';
    return 'live';
  }

  /** Whether `id` names this host and a pid that runs here (which may be it, or a reused pid). */
  private mayRunHere(id: string): boolean {
    const theirs = parseInstanceId(id);
    const ours = parseInstanceId(this.self.id);
    return theirs !== undefined && theirs.label === ours?.label && isRunning(theirs.pid);
  }

  /** The rows of these instances, by id (absent: no row). */
  async rows(ids: string[]): Promise<Map<string, InstanceRow>> {
    const unique = [...new Set(ids)];
    const found = new Map<string, InstanceRow>();
    for (let i = 0; i < unique.length; i += 500) {
      const rows = await this.db.selectFrom('instances').selectAll().where('id', 'in', unique.slice(i, i + 500)).execute();
      for (const row of rows) found.set(row.id, row);
    }
    return found;
  }

  /** The verdict on each of these instances. */
  async states(ids: string[], now = new Date()): Promise<Map<string, InstanceState>> {
    const rows = ids.length ? await this.rows(ids) : new Map<string, InstanceRow>();
    return new Map(ids.map((id) => [id, this.stateOf(id, rows.get(id), now)]));
  }

  /**
   * Removes the rows of processes that are gone, or silent for longer than `graceMs` (their
   * leftovers have been swept by then, or are judged gone from now on). Returns how many.
   */
  async prune(graceMs: number, now = new Date()): Promise<number> {
    const silentSince = new Date(now.getTime() - Math.max(graceMs, SILENT_AFTER_MS)).toISOString();
    const rows = await this.db
      .selectFrom('instances')
      .selectAll()
      .where('id', '!=', this.self.id)
      .where((eb) => eb.or([eb('host', '=', this.self.host), eb('last_seen', '<', silentSince)]))
      .execute();
    const dead = rows.filter((row) => row.last_seen < silentSince || this.stateOf(row.id, row, now) === 'gone').map((row) => row.id);
    if (dead.length === 0) return 0;
    await this.db.deleteFrom('instances').where('id', 'in', dead).execute();
    return dead.length;
  }
}
