import { StoreUnavailable } from '../errors';
import type { Store } from './store';

/**
 * Every store the service can reach, by driver name. New blobs go to the primary; a record's
 * blob is read and deleted through the store its `store` column names, so a volume and a bucket
 * can serve side by side while `stowage migrate-storage` moves records from one to the other.
 */
export class StoreSet {
  private readonly byDriver = new Map<string, Store>();

  constructor(
    readonly primary: Store,
    secondaries: Store[] = [],
    /** STORAGE_MIRROR's store (also among the secondaries): holds a copy of every mirrored blob. */
    readonly mirror?: Store,
  ) {
    for (const store of [primary, ...secondaries]) {
      if (!this.byDriver.has(store.driver)) this.byDriver.set(store.driver, store);
    }
  }

  /** The store holding blobs recorded under `driver`. */
  get(driver: string): Store {
    const store = this.byDriver.get(driver);
    if (!store) {
      throw new StoreUnavailable(
        `This file is kept in the "${driver}" store, which this server is not configured to reach.`,
      );
    }
    return store;
  }

  /** The store holding blobs recorded under `driver`, or undefined when this process can't reach it. */
  find(driver: string): Store | undefined {
    return this.byDriver.get(driver);
  }

  has(driver: string): boolean {
    return this.byDriver.has(driver);
  }

  all(): Store[] {
    return [...this.byDriver.values()];
  }

  async close(): Promise<void> {
    await Promise.all(this.all().map((store) => store.close()));
  }
}
