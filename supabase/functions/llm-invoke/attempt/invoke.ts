// The attempt loop of llm-invoke: the request's chain of models (model-chain.ts) → estimate → admit
// (reserve on the first model of the chain that can serve, or wait for capacity; an estimate that
// would be refused may be replaced by the provider's exact count, exact-count.ts) → call the provider with the
// reserved model → finalize, at most MAX_ATTEMPTS calls to providers, each preceded by its own
// reservation of the whole chain (a model a provider's 429 cooled down falls back to the next).
// Talks to the database only through GatewayStore and to providers only through UpstreamClient, so it is
// tested with in-memory fakes. This file is the loop alone; each other job is a unit it passes records
// to and gets records back from: request-plan.ts (the request's chain, size, claim and deadline, decided
// once), cache-first.ts (the response cache before anything is booked), admission.ts (reserve-or-wait,
// with wait-policy.ts), call.ts (a reservation made ready: key secret, service tier, the request as
// sent; the call itself), success.ts (a success's finalize and answer, answer.ts its shape), failure.ts
// (a failed call finalized, withdrawal.ts confirming a provider's 404 for its model), refusals.ts (what
// the caller is answered), key-exclusions.ts (which keys the next reservation leaves out), worker.ts
// (what a worker keeps for every request), model-chain.ts (which models may serve, and the request as
// each takes it). The count-tokens routes' counter is input-counter.ts.
//
// The loop is the same for every operation it runs (operation.ts): a generation (generation.ts) unless
// its context names another, which says what the request is as each model takes it, how large it is,
// what its call to the provider is and what a success answers.
//
// Before anything is booked, the response cache (../cache/) is asked where the request or the owner's
// default says so (cache-first.ts): a hit answers at once (no reservation, no call); a miss holds the
// entry's flight, which the answer is kept in when it is whole (after its finalize) and which a failure ends.
//
// A streamed request (stream.ts) is the same loop: an attempt that fails before the provider's first chunk
// is retried like any other; from the first chunk on, the answer belongs to the caller.
//
// Per outcome of a call to the provider:
//   success        finalize(succeeded) and answer (off the response path when waitUntil exists; before
//                  the answer where the provider's room is near its end: room.ts)
//   429            finalize with a cooldown (the provider's delay, or its midnight for a per-day quota),
//                  then the next attempt reserves again, which skips the cooled-down group
//   invalid key    finalize (the key leaves rotation), exclude that key, next attempt at once
//   5xx/timeout/   finalize, avoid that key, back off, next attempt (falls back to the avoided
//   network        keys if no other key exists); a provider's "overloaded" (its load, told by its
//                  dialect) passes the model over at once for the chain's next, while one is left
//   404 for the    the provider's own 404 for the model called, whatever its words (errors.ts),
//   model          confirmed by models.get for it on the same key answering the same kind of 404 (one
//                  confirmation per model at a time in a worker, shared by the requests that meet it):
//                  finalize as withdrawn (the reservation given back, the model row marked), forget
//                  the worker's cached row, next attempt at once: the reservation passes over the
//                  withdrawn model to the chain's next link, or refuses 404 model_withdrawn. A
//                  models.get that does not answer so (the key sees the model, or the provider could not
//                  say) leaves the row alone: as other 4xx
//   other 4xx      finalize, no retry: 400 upstream_rejected with the provider's (sanitized) message
// A reservation that never reached a provider (its key's secret is missing) is released and does not
// count as an attempt.
//
// Service tiers (service-tiers.ts): each call asks the provider for the tier of its (model, class) row, or
// the caller's own within its class (checked before the first reservation); the attempt row records
// the tier asked and the one it says served. A flex call the provider sheds (503) is retried like any 503, at standard when the row says so.
//
// Server-Timing: each call to the provider is timed as `upstream` (a stream's until its first chunk:
// the answer's headers leave then), a finalize the caller waits for as `finalize`; admission.ts times
// `reserve` and `wait`.
import type { Reservation } from "../contract.ts";
import type { KeyRefusal } from "../../_shared/providers/key-reader.ts";
import { sanitizeError } from "../../_shared/sanitize.ts";
import type { UpstreamError } from "../../_shared/upstream/port.ts";
import type { CacheFlight } from "../cache/response-cache.ts";
import { admit } from "./admission.ts";
import { callProvider, openProviderStream, prepareCall } from "./call.ts";
import { cacheFirst } from "./cache-first.ts";
import type { InvokeAnswer, InvokeContext } from "./context.ts";
import { settleFailure, type Withdrawn } from "./failure.ts";
import { KeyExclusions } from "./key-exclusions.ts";
import type { OperationOutcome } from "./operation.ts";
import { cancelled, exhausted, noActiveKey } from "./refusals.ts";
import { planRequest, type RequestPlan } from "./request-plan.ts";
import { cachedServiceTiers, shedFlex } from "./service-tiers.ts";
import type { InvokeOptions } from "./settings.ts";
import { answerStreamed, answerWhole, type Served } from "./success.ts";
import { type WithdrawalCheck, withdrawalCheck } from "./withdrawal.ts";
import { type InvokeDeps, type WorkerParts, workerParts } from "./worker.ts";

export type { InvokeDeps } from "./worker.ts";

export const MAX_ATTEMPTS = 3;

/** Key rows skipped because their secret is missing, per request, before giving up. */
const MAX_UNUSABLE_KEYS = 10;

/** What the loop takes from its worker: the shared parts, the tier rows, the withdrawal check, its jitter. */
interface LoopDeps {
  worker: WorkerParts;
  serviceTiers: ReturnType<typeof cachedServiceTiers>;
  stillNotFound: WithdrawalCheck;
  /** A random part of each backoff (ms). */
  jitter: () => number;
}

export function createInvoke(deps: InvokeDeps): (ctx: InvokeContext) => Promise<InvokeAnswer> {
  const worker = workerParts(deps);
  const { options, clock } = worker;
  const random = deps.random ?? Math.random;
  const serviceTiers = cachedServiceTiers(deps.store, clock, options.capabilitiesTtlMs);
  const loop: LoopDeps = {
    worker,
    serviceTiers,
    stillNotFound: withdrawalCheck(clock, options.attemptTimeoutMs),
    jitter: () => Math.floor(random() * options.jitterMs),
  };
  return async (context) => {
    const plan = await planRequest(worker, serviceTiers, deps.waitUntil, context);
    // The response cache, before anything is booked: a hit answers here.
    const cached = await cacheFirst(deps.cache, worker.upstreamServing, plan);
    if (cached.kind === "hit") return cached.answer;
    return attemptLoop(loop, plan, cached.flight);
  };
}

/** The reservation's ask for the links left (by index into the chain), the keys left out, the attempt's number. */
function reserveAsk(plan: RequestPlan, links: readonly number[], excludeKeyIds: string[], attempt: number, first: boolean) {
  const { request, chain, answerTokens, requests } = plan;
  return {
    model: links[0] === 0 ? request.model : chain[links[0]!]!.model,
    fallbackModels: links.slice(1).map((i) => chain[i]!.model),
    outputTokens: links.map((i) => answerTokens.perModel[i] ?? null),
    caller: plan.reserveAs,
    requestId: plan.requestId,
    excludeKeyIds,
    // Numbered by calls to providers: a reservation whose key could not be used is made again
    // with the same number (which keeps a token's request budget counted once).
    attempt,
    metadata: request.metadata,
    priority: request.priority ?? null,
    // Checked (and marked in flight) until this invocation holds its first reservation;
    // later reservations belong to the same request.
    idempotent: plan.idempotent && first,
    claim: plan.claim,
    ...(requests === 1 ? {} : { requests }),
  };
}

/** The wait before the next attempt after a retryable failure: exponential in the calls made, jittered. */
function backoffMs(options: InvokeOptions, calls: number, jitter: () => number): number {
  return options.backoffBaseMs * 2 ** (calls - 1) + jitter();
}

/** The chain's links (by index) not passed over as overloaded; null when none is left. */
function linksLeft(chain: RequestPlan["chain"], overloaded: ReadonlySet<string>): number[] | null {
  const left = chain.flatMap((l, i) => (overloaded.has(l.model) ? [] : [i]));
  return left.length > 0 ? left : null;
}

/** What the loop leaves out of its next reservations: keys that failed, models whose provider is overloaded. */
interface LeftOut {
  keys: KeyExclusions;
  /** Models whose provider answered this request that it is overloaded (UpstreamError.overloaded). */
  overloaded: Set<string>;
}

/** A failed call, as the loop takes it to decide the next attempt. */
type FailedCall = Extract<OperationOutcome, { ok: false }>;

/** An outcome, not an answer: only a failed call says `ok` (an answer never has the field). */
const isFailedCall = (got: InvokeAnswer | FailedCall): got is FailedCall => (got as { ok?: boolean }).ok === false;

/** One call made: the answer on a success (a stream's from its first chunk on), else the failed call. */
async function callOnce(
  worker: WorkerParts,
  plan: RequestPlan,
  flight: CacheFlight | null,
  served: Served<{ model: string }>,
): Promise<InvokeAnswer | FailedCall> {
  const { call, reservation } = served;
  if (plan.operation.stream !== undefined) {
    const opened = await openProviderStream(worker, plan, call, reservation, plan.operation.stream);
    if (!opened.ok) return opened;
    if (flight !== null) plan.onCache?.({ status: "miss" }); // kept when it ends whole
    return answerStreamed(worker, plan, flight, served, opened);
  }
  const outcome = await callProvider(worker, plan, call, reservation);
  return outcome.ok ? await answerWhole(worker, plan, flight, served, outcome) : outcome;
}

/**
 * After a failed call that leaves the request another attempt: its key left out (broken, or avoided
 * while others exist), its model passed over where its provider is overloaded, and a backoff before a
 * retryable failure's next call on the same link. False: no time is left for that backoff.
 */
async function readyForNext(
  loop: LoopDeps,
  plan: RequestPlan,
  leftOut: LeftOut,
  failure: { error: UpstreamError; reservation: Reservation; calls: number },
): Promise<boolean> {
  const { error, reservation, calls } = failure;
  const { clock, options } = loop.worker;
  if (error.class === "invalid_key") leftOut.keys.markBroken(reservation.keyId);
  else leftOut.keys.markAvoided(reservation.keyId);
  if (error.overloaded === true) leftOut.overloaded.add(reservation.model);
  // Another link of the chain does not share this model's load: it is tried at once, with no backoff.
  const nextModel = error.overloaded === true && linksLeft(plan.chain, leftOut.overloaded) !== null;
  if (error.class === "retryable" && calls < MAX_ATTEMPTS && !nextModel) {
    const backoff = backoffMs(options, calls, loop.jitter);
    if (clock.now() + backoff >= plan.deadline) return false;
    await clock.sleep(backoff, plan.signal).catch(() => {
      throw cancelled();
    });
  }
  return true;
}

/**
 * The attempt loop: reserve (or wait), make the call ready, call, and on a failure decide the next
 * attempt, at most MAX_ATTEMPTS calls to providers. Its state is its own: the units it calls take
 * records and give records back.
 */
async function attemptLoop(loop: LoopDeps, plan: RequestPlan, flight: CacheFlight | null): Promise<InvokeAnswer> {
  const { worker, serviceTiers, stillNotFound } = loop;
  const { store, clock, logError } = worker;
  const { request, requestId, chain, deadline, timing, causeWords } = plan;
  const leftOut: LeftOut = { keys: new KeyExclusions(), overloaded: new Set<string>() };
  const { keys } = leftOut;
  const waiting = { mode: request.mode, maxWaitMs: request.maxWaitMs, deadline, signal: plan.signal, waitedMs: 0 };
  let calls = 0;
  let unusableKeys = 0;
  let lastError: UpstreamError | null = null;
  /** Why the last key whose secret could not be read was not (no secret named), for the caller. */
  let unreadKey: KeyRefusal | "no_row" | null = null;
  /** The model this request found withdrawn last, and its successor (the answer if no call is left). */
  let withdrawn: Withdrawn | null = null;
  let lastReservation: Reservation | null = null;
  /** The provider shed a flex call of this request: the next asks for standard where the row says so. */
  let flexShed = false;
  try {
    while (calls < MAX_ATTEMPTS && unusableKeys <= MAX_UNUSABLE_KEYS) {
      if (calls > 0 && clock.now() >= deadline) break;
      // A model its provider said is overloaded is passed over while the chain has another.
      const links = linksLeft(chain, leftOut.overloaded) ?? chain.map((_, i) => i);
      const admission = await admit(
        { store, clock, onQuota: plan.onQuota, onQueued: plan.onQueued, timing },
        reserveAsk(plan, links, keys.list(), calls + 1, lastReservation === null),
        plan.size,
        waiting,
        { model: request.model, requestId, causeWords },
      );
      if (admission.kind === "replay") {
        await flight?.drop();
        return { ...admission.response, replayed: true };
      }
      if (admission.kind === "no_active_key") {
        if (keys.forgiveAvoided()) continue;
        throw keys.anyBroken ? exhausted(lastError, withdrawn, unreadKey, causeWords(lastReservation?.model ?? null)) : noActiveKey();
      }
      const reservation = lastReservation = admission.reservation;
      const call = await prepareCall(worker, serviceTiers, plan, reservation, flexShed);
      if ("unread" in call) {
        unreadKey = call.unread;
        keys.markBroken(reservation.keyId);
        unusableKeys++;
        continue;
      }
      calls++;
      const got = await callOnce(worker, plan, flight, { call, reservation, attempts: calls, waitedMs: waiting.waitedMs });
      if (!isFailedCall(got)) return got;
      if (shedFlex(call.tier, got.error)) flexShed = true;
      // Finalized (awaited: the next reservation must see its cooldown), or thrown as the caller's answer.
      const settled = await settleFailure(worker, stillNotFound, plan, got, reservation, call);
      lastError = settled.error;
      // A withdrawn model needs no backoff: the next reservation passes over it.
      if (settled.withdrawn !== null) withdrawn = settled.withdrawn;
      else if (!(await readyForNext(loop, plan, leftOut, { error: settled.error, reservation, calls }))) break;
    }
    throw exhausted(lastError, withdrawn, unreadKey, causeWords(lastReservation?.model ?? null));
  } catch (error) {
    await flight?.drop();
    // A named request that fails frees its id at once (a success stores the answer instead).
    if (plan.idempotent && lastReservation !== null) {
      await plan.afterAnswer(
        store.endRequest(lastReservation.reservationId).catch((e) =>
          logError(`end of request ${requestId} failed: ${sanitizeError(e)}`)
        ),
      );
    }
    throw error;
  }
}
