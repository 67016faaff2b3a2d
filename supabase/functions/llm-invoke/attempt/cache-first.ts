// The response cache, asked before anything is booked (../cache/response-cache.ts): a hit answers at
// once (no reservation, no call); a miss holds the entry's flight, which the answer is kept in when it
// is whole (after its finalize: success.ts) and which a failure ends (invoke.ts).
import type { CacheFlight, ResponseCache } from "../cache/response-cache.ts";
import type { InvokeResult } from "./context.ts";
import type { RequestPlan } from "./request-plan.ts";
import type { WorkerParts } from "./worker.ts";

/** What the cache decided: the stored answer, or a call to make (holding the entry's flight, or none). */
export type CacheFirst = { kind: "hit"; answer: InvokeResult } | { kind: "call"; flight: CacheFlight | null };

/** Asks the cache and tells the caller what it did (`plan.onCache`), before the answer is given. */
export async function cacheFirst(
  cache: ResponseCache | undefined,
  upstreamServing: WorkerParts["upstreamServing"],
  plan: RequestPlan,
): Promise<CacheFirst> {
  const cached = await startCache(cache, upstreamServing, plan);
  if (cached?.kind === "hit") {
    plan.onCache?.(cached.report);
    return { kind: "hit", answer: { ...(cached.answer as unknown as InvokeResult), cached: cached.cached } };
  }
  const flight: CacheFlight | null = cached?.kind === "flight" ? cached : null;
  // A call under way is a miss until its whole answer is stored: an error answer says so too.
  plan.onCache?.(cached?.kind === "flight" ? { status: "miss" } : cached?.report ?? { status: "bypass" });
  return { kind: "call", flight };
}

/**
 * The cache's look-up for the request as its first model's provider would be sent it (what the
 * operation keys on: a generation's wire body, its tier left out and its booked answer in); null
 * where there is no cache or its provider has no usable row.
 */
async function startCache(
  cache: ResponseCache | undefined,
  upstreamServing: WorkerParts["upstreamServing"],
  plan: RequestPlan,
) {
  if (cache === undefined) return null;
  const { chain, request, operation, answerTokens, timing } = plan;
  const first = chain[0]!;
  const upstream = await upstreamServing(first.profile);
  if (upstream === undefined) return null;
  return await cache.start({
    ask: plan.cacheAsk ?? { mode: "default" },
    caller: plan.reserveAs,
    requestId: plan.requestId,
    model: first.model,
    provider: upstream.provider,
    body: () => operation.cacheBody(upstream.client, first.request, answerTokens),
    deadline: plan.deadline,
    maxWaitMs: request.mode === "NO_WAIT" ? 0 : request.maxWaitMs,
    signal: plan.signal,
    // Its look-up stands where the reservation would, and is timed as one.
    timed: (work) => timing.time("reserve", work),
  });
}
