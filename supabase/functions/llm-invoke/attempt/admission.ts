// Admission: reserve capacity for one call to a provider, waiting for it in WAIT mode. The database
// decides (one RPC per try). In WAIT mode a refusal puts the request in the admission queue and names
// the exact time of its turn; wait-policy.ts says whether to sleep until then (and call again with
// the ticket) or answer now. NO_WAIT answers a refusal at once. A refusal that the provider's exact count of the input may lift
// (exact-count.ts: too_large, or tpm for a large input) first asks for that count, once per request,
// and reserves again with it at once. A request with fallback models reserves its whole chain in each
// round trip (the database tries the models in order); a ticket ties it to the model it queued on.
// Each round trip is timed as `reserve`, each sleep for a turn as `wait` (Server-Timing).
import { type PhaseTimer, untimed } from "../../_shared/server-timing.ts";
import type { FallbackStep, QuotaSnapshot, Reservation, ReserveParams, InvokeMode } from "../contract.ts";
import type { Clock } from "../clock.ts";
import type { InputSize } from "../model/exact-count.ts";
import type { InvokeResult, QueueProgress } from "./context.ts";
import { finalRefusal, isWaitable, quotaRefusal, type RefusalContext } from "./refusals.ts";
import type { GatewayStore } from "../store/store.ts";
import { nextTurn, waitLeftForDatabase } from "./wait-policy.ts";

export type Admission =
  | { kind: "reserved"; reservation: Reservation }
  /** The caller's own request_id was answered before: its stored answer, no call to a provider. */
  | { kind: "replay"; response: InvokeResult }
  /** No active key is left once the excluded ones are set aside. */
  | { kind: "no_active_key" };

export interface AdmissionDeps {
  store: Pick<GatewayStore, "reserve">;
  clock: Clock;
  /** Told the quota each answer of the database carried. */
  onQuota?: (quota: QuotaSnapshot) => void;
  /** Told the request's place in line each time it waits for its turn (progress events of a stream). */
  onQueued?: (progress: QueueProgress) => void;
  /** The request's phase recorder: reservation round trips and sleeps for a turn. */
  timing?: PhaseTimer;
}

export interface Waiting {
  mode: InvokeMode;
  maxWaitMs: number;
  /** End of the whole invocation's budget (clock ms). */
  deadline: number;
  signal: AbortSignal;
  /** Sleep spent so far by this invocation, across its attempts; admission adds to it. */
  waitedMs: number;
}

/**
 * Reserves `size.tokens`, sleeping between refusals as the wait policy says; throws the caller's
 * error when it ends.
 */
export async function admit(
  deps: AdmissionDeps,
  params: Omit<ReserveParams, "waitMs" | "estimatedTokens" | "queueTicket" | "waitLeftMs">,
  size: InputSize,
  waiting: Waiting,
  refusal: Pick<RefusalContext, "model" | "requestId" | "causeWords">,
): Promise<Admission> {
  let queueTicket: string | null = null;
  // Models a queued request was passed over for: its later, ticketed call starts at the ticket's model.
  let passedOver: FallbackStep[] = [];
  const timing = deps.timing ?? untimed;
  for (;;) {
    const remainingMs = Math.min(waiting.maxWaitMs - waiting.waitedMs, waiting.deadline - deps.clock.now());
    const r = await timing.time("reserve", () =>
      deps.store.reserve({
        ...params,
        estimatedTokens: size.tokens,
        waitMs: waiting.waitedMs,
        queueTicket,
        waitLeftMs: waiting.mode === "WAIT" ? waitLeftForDatabase(remainingMs) : 0,
      }));
    if (r.quota != null) deps.onQuota?.(r.quota);
    if (r.ok) {
      const fallbackFrom = joinSteps(passedOver, r.fallbackFrom);
      return { kind: "reserved", reservation: fallbackFrom.length === 0 ? r : { ...r, fallbackFrom } };
    }
    if (r.limit === "duplicate") return { kind: "replay", response: r.response as InvokeResult };
    if (r.limit === "no_active_key") return { kind: "no_active_key" };
    // More requests at once than the model's minute or day holds: no count of tokens changes that.
    if (r.limit === "too_large" && r.requests !== undefined) throw finalRefusal(r, { ...refusal, estimatedTokens: size.estimated })!;
    const counted = await size.recount(r);
    const context = {
      ...refusal,
      estimatedTokens: size.estimated,
      countedTokens: size.counted,
      countedBy: size.countedBy,
      bookedOutputTokens: size.bookedOutput,
      imageTokens: size.imageTokens,
    };
    // The provider's count is still above the most one request may book: no second round trip to hear it.
    // (A model that counts its answer apart, OTPM, holds the input alone to maxTokens.)
    const over = r.maxOutputTokens == null
      ? r.maxTokens != null && size.tokens > r.maxTokens
      : size.bookedOutput > r.maxOutputTokens || (r.maxTokens != null && size.input > r.maxTokens);
    if (counted && r.limit === "too_large" && over) {
      throw finalRefusal(r, context)!;
    }
    if (counted) {
      if (r.queue) {
        queueTicket = r.queue.ticket; // asking again with the count keeps the place in line
        passedOver = joinSteps(passedOver, r.fallbackFrom);
      }
      continue;
    }
    const final = finalRefusal(r, context);
    // A provider's cause in the words of the provider serving the model the refusal names.
    const words = refusal.causeWords?.(r.model ?? null);
    if (final !== null || !isWaitable(r.limit)) throw final ?? quotaRefusal(r, words);

    // Judged against the wait the database was told: a ticket it gave is kept (a round trip slower
    // than the allowance costs a few milliseconds of budget, not a turn left to lapse unclaimed).
    const decision = waiting.mode === "NO_WAIT" ? { wait: false as const } : nextTurn(r, remainingMs);
    if (!decision.wait) throw quotaRefusal(r, words);
    queueTicket = decision.ticket;
    passedOver = joinSteps(passedOver, r.fallbackFrom);
    deps.onQueued?.({
      model: r.model ?? null,
      position: r.queue?.position ?? null,
      priority: r.queue?.priority ?? null,
      cause: r.refusalCause ?? null,
      expectedAt: r.queue?.expectedAt ?? new Date(deps.clock.now() + decision.sleepMs).toISOString(),
      sleepMs: decision.sleepMs,
    });
    try {
      await timing.time("wait", () => deps.clock.sleep(decision.sleepMs, waiting.signal));
    } catch {
      throw quotaRefusal(r, words); // the caller went away while waiting
    }
    waiting.waitedMs += decision.sleepMs;
  }
}

/** Steps of earlier calls, then this call's, each model once. */
function joinSteps(earlier: readonly FallbackStep[], now: readonly FallbackStep[] | undefined): FallbackStep[] {
  const steps = [...earlier];
  for (const step of now ?? []) if (!steps.some((s) => s.model === step.model)) steps.push(step);
  return steps;
}
