// Per-worker cache of model rows: they change rarely and cost a round trip. Unknown names are not
// cached (a caller could fill the cache with them) and the cache is bounded.
import type { Clock } from "./clock.ts";
import type { ModelCapabilities } from "./gemma.ts";
import type { GatewayStore } from "./store.ts";

const MAX_ENTRIES = 100;

export function cachedCapabilities(
  store: Pick<GatewayStore, "modelCapabilities">,
  clock: Pick<Clock, "now">,
  ttlMs: number,
): (model: string) => Promise<ModelCapabilities | null> {
  const cache = new Map<string, { at: number; value: ModelCapabilities }>();
  return async (model) => {
    const hit = cache.get(model);
    if (hit !== undefined && clock.now() - hit.at < ttlMs) return hit.value;
    const value = await store.modelCapabilities(model);
    if (value !== null) {
      if (cache.size >= MAX_ENTRIES) cache.clear();
      cache.set(model, { at: clock.now(), value });
    }
    return value;
  };
}
