// Per-worker cache of model rows (capabilities and fallback chains): they change rarely and cost a
// round trip. Only a model's first use in a worker waits for its row (concurrent first uses share one
// look-up). After that no request waits: a row older than ttlMs is answered at once and refreshed in
// the background, one refresh per model at a time; a failed refresh keeps the old row (pg-store has
// logged why) and a later request tries again.
//
// Serving a row up to one refresh late is safe: the row only shapes the request (where the system
// prompt goes, whether JSON mode is allowed, which models to try in order). The reservation checks in
// its own transaction that each model is active and within its limits, so a stale row cannot admit
// what the database refuses. A change is used once the refresh started by the first request after
// ttlMs lands.
//
// Unknown names are not cached (a caller could fill the cache with them; a known row that a refresh
// no longer finds is dropped), and the cache is bounded. `forget(model)` drops every name that stands
// for a model (a worker that met its provider's 404 for it reads its row, and the names' rows, afresh).
import type { Clock } from "../clock.ts";
import type { ModelProfile } from "../contract.ts";
import type { GatewayStore } from "../store/store.ts";

const MAX_ENTRIES = 100;

interface Entry {
  at: number;
  value: ModelProfile;
  refreshing: boolean;
}

export interface ProfileCache {
  (model: string): Promise<ModelProfile | null>;
  /** Drops the cached rows of this canonical model, under every name they were asked by. */
  forget(model: string): void;
}

export function cachedProfiles(
  store: Pick<GatewayStore, "modelProfile">,
  clock: Pick<Clock, "now">,
  ttlMs: number,
): ProfileCache {
  const cache = new Map<string, Entry>();
  const firstLookups = new Map<string, Promise<ModelProfile | null>>();

  /** The store's answer as a promise, even if the call throws before returning one. */
  const lookUp = (model: string) => new Promise<ModelProfile | null>((resolve) => resolve(store.modelProfile(model)));

  function remember(model: string, value: ModelProfile): void {
    if (cache.size >= MAX_ENTRIES) cache.clear();
    cache.set(model, { at: clock.now(), value, refreshing: false });
  }

  function refresh(model: string, entry: Entry): void {
    entry.refreshing = true;
    lookUp(model).then(
      (value) => {
        if (cache.get(model) !== entry) return; // the cache was cleared meanwhile
        if (value === null) {
          cache.delete(model);
          return;
        }
        entry.value = value;
        entry.at = clock.now();
        entry.refreshing = false;
      },
      () => {
        entry.refreshing = false;
      },
    );
  }

  const lookup = (model: string): Promise<ModelProfile | null> => {
    const hit = cache.get(model);
    if (hit !== undefined) {
      if (!hit.refreshing && clock.now() - hit.at >= ttlMs) refresh(model, hit);
      return Promise.resolve(hit.value);
    }
    let pending = firstLookups.get(model);
    if (pending === undefined) {
      pending = lookUp(model).then((value) => {
        if (value !== null) remember(model, value);
        return value;
      }).finally(() => firstLookups.delete(model));
      firstLookups.set(model, pending);
    }
    return pending;
  };
  return Object.assign(lookup, {
    forget(model: string): void {
      for (const [name, entry] of [...cache]) {
        if (name === model || entry.value.model === model) cache.delete(name);
      }
    },
  });
}
