// The cache key: SHA-256 of what the provider would be sent, after the route's translation, the
// model's fitting (model/adapt.ts) and the gateway's own overrides, the model after its alias:
// { provider, model, body } where body is the provider's wire body as its client writes it
// (UpstreamClient.wireBody), written with sorted keys so two routes whose bodies translate to the
// same request share an entry. Left out, because they do not change the answer: the stream flag (the
// body is always written as a whole call), the request id, metadata, the caller's labels and class,
// WAIT/NO_WAIT and max_wait_ms, fallback_models (an entry records which model served), the service
// tier (a price and a speed, not another answer). Not left out: sampling (temperature, seed, n...):
// asking the cache is asking for the same answer again.
import type { HubRequest } from "../../_shared/upstream/hub.ts";

/** JSON with object keys sorted at every depth (undefined fields dropped, as JSON.stringify does). */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? "null" : canonicalJson(v))).join(",")}]`;
  const fields = Object.keys(value as Record<string, unknown>)
    .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
  return `{${fields.join(",")}}`;
}

/** The request as keyed: the hub request without what the gateway sets per call (its tier). */
export function keyedRequest(request: HubRequest): HubRequest {
  const { serviceTier: _tier, ...rest } = request;
  return rest;
}

export async function cacheKey(provider: string, model: string, body: unknown): Promise<string> {
  const bytes = new TextEncoder().encode(canonicalJson({ provider, model, body }));
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
