import type { Store } from '../storage/store';
import type { StoreMap } from './context';

/** The stores by the name records carry; more than one once object storage runs beside a volume. */
export function storeMap(...stores: Store[]): StoreMap {
  return new Map(stores.map((s) => [s.driver, s]));
}
