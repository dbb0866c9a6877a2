import type { SelectQueryBuilder } from 'kysely';
import type { Logger } from 'pino';
import type { Placement } from '../catalog/placement';
import type { CatalogDb } from '../catalog/database';
import type { Database } from '../catalog/schema';
import type { Instances } from '../catalog/instances';
import type { Files } from '../files/files';
import type { ScratchPlaces } from '../leftovers';
import type { Store } from '../storage/store';
import type { StoreSet } from '../storage/store-set';
import type { TusUploadPlace } from '../uploads/tus/leftovers';

export interface DoctorDeps {
  db: CatalogDb;
  /** The same stores as the server's: every store a record may name. */
  stores: StoreSet;
  /** STORAGE_MIRROR's store: a blob missing from its store but copied here is restorable, not lost. */
  mirror?: Store;
  /**
   * This process's Fly Machine, when files live on several Machines' volumes: only the records
   * placed on this Machine (or on no Machine) can be checked here; the others' blobs are on
   * volumes this process can't see, and are checked by the doctor on their own Machine.
   */
  placement?: Placement;
  /** Records are deleted through the file lifecycle, like the API deletes them. */
  files: Files;
  /** Which processes are alive: what a dead one left (a pending upload, temp files, source copies) is a problem at once. */
  instances: Instances;
  /** Where processes write scratch files: the doctor reports (and --fix removes) what dead ones left. */
  scratch: ScratchPlaces;
  /** Where resumable uploads keep their bytes (`.tus/`): what nothing will finish is reported (and --fix removes it). */
  tusUploads?: TusUploadPlace;
  log: Logger;
}

export interface DoctorScope {
  /** Only this owner's records (orphans are then not scanned: they have no owner). */
  owner?: string;
  /** Only records created, and blobs modified, at or after this time. */
  since?: Date;
  /** Orphan blobs and pending uploads younger than this are in flight, not problems. */
  graceMs: number;
  /** Also stream every blob through sha256 and compare with the record. */
  verify: boolean;
}

export type Phase = 'records' | 'pending' | 'blobs' | 'tasks' | 'mirror' | 'leftovers' | 'uploads';

/** Called after each page so a progress bar can move; `total` is known for records only. */
export type ProgressListener = (event: { phase: Phase; done: number; total?: number }) => void;

/** Rows read from the catalog and keys asked of a store per round trip: bounds memory. */
export const PAGE_SIZE = 200;

/** Default grace period: uploads and blobs younger than an hour are taken to be in flight. */
export const DEFAULT_GRACE_MS = 60 * 60 * 1000;

/** Narrows a query on files to the scope: this Machine's records (with placement), the owner, the time. */
export function filesInScope<O>(query: SelectQueryBuilder<Database, 'files', O>, deps: DoctorDeps, scope: DoctorScope): SelectQueryBuilder<Database, 'files', O> {
  const here = deps.placement?.machineId;
  if (here) query = query.where((eb) => eb.or([eb('machine_id', 'is', null), eb('machine_id', '=', here)]));
  if (scope.owner) query = query.where('owner', '=', scope.owner);
  if (scope.since) query = query.where('created_at', '>=', scope.since.toISOString());
  return query;
}
