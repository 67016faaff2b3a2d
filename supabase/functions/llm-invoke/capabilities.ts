// Per-worker cache of model rows (capabilities and fallback chains): they change rarely and cost a
// round trip. Unknown names are not cached (a caller could fill the cache with them) and the cache is
// bounded.
import type { Clock } from "./clock.ts";
import type { GatewayStore, ModelProfile } from "./store.ts";

const MAX_ENTRIES = 100;

export function cachedProfiles(
  store: Pick<GatewayStore, "modelProfile">,
  clock: Pick<Clock, "now">,
  ttlMs: number,
): (model: string) => Promise<ModelProfile | null> {
  const cache = new Map<string, { at: number; value: ModelProfile }>();
  return async (model) => {
    const hit = cache.get(model);
    if (hit !== undefined && clock.now() - hit.at < ttlMs) return hit.value;
    const value = await store.modelProfile(model);
    if (value !== null) {
      if (cache.size >= MAX_ENTRIES) cache.clear();
      cache.set(model, { at: clock.now(), value });
    }
    return value;
  };
}
