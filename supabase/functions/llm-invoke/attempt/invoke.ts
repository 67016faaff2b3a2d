// The attempt loop of llm-invoke: the request's chain of models (model-chain.ts) → estimate → admit
// (reserve on the first model of the chain that can serve, or wait for capacity; an estimate that
// would be refused may be replaced by the provider's exact count, exact-count.ts) → call the provider with the
// reserved model → finalize, at most MAX_ATTEMPTS calls to providers, each preceded by its own
// reservation of the whole chain (a model a provider's 429 cooled down falls back to the next).
// Talks to the database only through GatewayStore and to providers only through UpstreamClient, so it is
// tested with in-memory fakes. The parts: admission.ts (reserve-or-wait, with wait-policy.ts),
// refusals.ts (what the caller is answered), attempt-record.ts (what finalize writes),
// key-exclusions.ts (which keys the next reservation leaves out), finalize.ts (finalize that does not
// lose a paid answer), model-chain.ts (which models may serve, and the request as each takes it).
//
// Before anything is booked, the response cache (../cache/) is asked where the request or the owner's
// default says so: a hit answers at once (no reservation, no call); a miss holds the entry's flight,
// which the answer is kept in when it is whole (after its finalize) and which a failure ends.
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
import type { FinalizeParams, ModelProfile, ModelRequest, NormalizedRequest, Reservation } from "../contract.ts";
import type { Provider } from "../../_shared/providers/registry.ts";
import type { ProviderDirectory, Upstream } from "../../_shared/providers/directory.ts";
import type { KeyRefusal } from "../../_shared/providers/key-reader.ts";
import { bookedEmbeddingUsage, providerRequests } from "./embedding.ts";
import { requireModel, reserveCallerOf, type Scope } from "./caller.ts";
import { GatewayError } from "../../_shared/errors.ts";
import { sanitizeError } from "../../_shared/sanitize.ts";
import { type PhaseTimer, untimed } from "../../_shared/server-timing.ts";
import { admit } from "./admission.ts";
import { answerSize, bookedPerAnswer, withBookedCap } from "./answer-size.ts";
import { answerTimes, failureRecord, successRecord, usageCounts } from "./attempt-record.ts";
import { cachedProfiles } from "../model/capabilities.ts";
import { createTokenCounter, InputSize, type TokenCounter } from "../model/exact-count.ts";
import { type Clock, settledWithin, systemClock } from "../clock.ts";
import { answerUsage, type InvokeAnswer, type InvokeContext, type InvokeResult } from "./context.ts";
import { type HubRequest, hubText } from "../../_shared/upstream/hub.ts";
import { finalizeReliably, landsWithin, WRITTEN_FIRST_WAIT_MS } from "./finalize.ts";
import { KeyExclusions } from "./key-exclusions.ts";
import { type ChainLink, linkFor, requestFor, resolveChain } from "../model/model-chain.ts";
import { countedLink } from "./counted-model.ts";
import { moneyRested } from "./money-rest.ts";
import {
  admissibleClasses,
  cachedServiceTiers,
  checkAskedTier,
  chooseTier,
  shedFlex,
  type TierChoice,
} from "./service-tiers.ts";
import {
  cancelled,
  type CauseWords,
  exhausted,
  fallbackSteps,
  noActiveKey,
  rejectedByProvider,
} from "./refusals.ts";
import { quotaCauseWords } from "../../_shared/vocabulary.ts";
import { DEFAULT_INVOKE_OPTIONS, type InvokeOptions } from "./settings.ts";
import type { CacheFlight, ResponseCache } from "../cache/response-cache.ts";
import { keyedRequest } from "../cache/key.ts";
import type { GatewayStore } from "../store/store.ts";
import { openStream, relayStream } from "./stream.ts";
import { roomUntil, writeBeforeAnswer } from "./room.ts";
import { estimateRequestTokens } from "../model/tokens.ts";
import {
  type GenerateOutcome,
  type ProviderRoom,
  type StreamOutcome,
  type UpstreamClient,
  type UpstreamError,
} from "../../_shared/upstream/port.ts";

export const MAX_ATTEMPTS = 3;

/** One call made ready (createInvoke's prepareCall): who is called, with which key, tier and request. */
interface PreparedCall {
  provider: Provider;
  /** The provider's name, for messages. */
  who: string;
  /** The zone its day and month turn in (its row's day_zone). */
  dayZone: string;
  client: UpstreamClient;
  apiKey: string;
  tier: TierChoice["tier"];
  /** The request as the provider port takes it (the hub's, and the inner dialect's own body). */
  sent: HubRequest;
}

const providerOf = (profile: ModelProfile): Provider => profile.provider;


/** Key rows skipped because their secret is missing, per request, before giving up. */
const MAX_UNUSABLE_KEYS = 10;

export interface InvokeDeps {
  store: GatewayStore;
  /**
   * The provider rows made usable (providers/directory.ts): each one's client, and its key read from the
   * Edge secret store by a key row's env_var_name. A provider not in it has no usable key here.
   */
  providers: () => Promise<Pick<ProviderDirectory, "upstream">>;
  options?: Partial<InvokeOptions>;
  clock?: Clock;
  random?: () => number;
  /** EdgeRuntime.waitUntil where available: lets the success's finalize run after the response. */
  waitUntil?: (promise: Promise<unknown>) => void;
  /** The response cache (cache/response-cache.ts); absent: every answer says bypass. */
  cache?: ResponseCache;
  logError?: (message: string) => void;
}

/**
 * What the attempt loop and the countTokens route share: options, clock, cached model rows, and the
 * exact count of each provider that offers one.
 */
function shared(deps: Pick<InvokeDeps, "store" | "providers" | "options" | "clock" | "logError">) {
  const options = { ...DEFAULT_INVOKE_OPTIONS, ...deps.options };
  const clock = deps.clock ?? systemClock;
  const logError = deps.logError ?? ((m: string) => console.error(`[llm-invoke] ${m}`));
  // One counter per usable provider row (a row read again makes a new one).
  const counters = new WeakMap<Upstream, TokenCounter>();
  /** The provider serving `profile`'s model, or undefined when its row is not usable here. */
  const upstreamServing = async (profile: ModelProfile) => (await deps.providers()).upstream(providerOf(profile));
  return {
    options,
    clock,
    logError,
    upstreamServing,
    /**
     * The words of the provider serving each model of the chain (a refusal's cause said as that provider
     * says it), by the model a refusal names (null: the chain's first); the gateway's own where a
     * provider's row is not usable here.
     */
    causeWordsOf: async (chain: readonly ChainLink[]): Promise<(model: string | null) => CauseWords> => {
      const byModel = new Map<string, CauseWords>();
      for (const link of chain) {
        const upstream = await upstreamServing(link.profile).catch(() => undefined);
        if (upstream !== undefined) byModel.set(link.model, (cause) => upstream.causeWords(cause));
      }
      const first = chain[0]!.model;
      return (model) => byModel.get(model ?? first) ?? byModel.get(first) ?? quotaCauseWords;
    },
    profiles: cachedProfiles(deps.store, clock, options.capabilitiesTtlMs),
    /** The exact count of the provider serving `profile`'s model; undefined: it offers none. */
    counterFor: async (profile: ModelProfile): Promise<TokenCounter | undefined> => {
      const upstream = await upstreamServing(profile);
      const countTokens = upstream?.client.countTokens?.bind(upstream.client);
      if (upstream === undefined || countTokens === undefined) return undefined;
      let counter = counters.get(upstream);
      if (counter === undefined) {
        counter = createTokenCounter({
          store: deps.store,
          provider: upstream.provider,
          client: { countTokens },
          // A provider counts with its own keys only (another provider's key row never reaches it).
          secret: upstream.key,
          clock,
          keysTtlMs: options.capabilitiesTtlMs,
          logError,
        });
        counters.set(upstream, counter);
      }
      return counter;
    },
  };
}

/**
 * The provider's count of a request's input as the model takes it (the count-tokens routes). It books
 * no quota: a provider's count is free and has its own quota there. Throws when no count can be had.
 */
export function createInputCounter(
  deps: Pick<InvokeDeps, "store" | "providers" | "options" | "clock" | "logError">,
): (
  request: NormalizedRequest,
  signal: AbortSignal,
  scope?: Scope,
  timing?: PhaseTimer,
) => Promise<number> {
  const { options, clock, profiles, counterFor, upstreamServing } = shared(deps);
  return async (request, signal, scope = {}, timing) => {
    const [named] = await resolveChain(profiles, { ...request, fallbackModels: [] });
    // A scoped token counts only for its own models (the pool's countTokens quota is everyone's).
    requireModel(scope, named!.model);
    // A model withdrawn or shut down is answered as a generation would be, without asking its provider
    // (a count books nothing to learn it by): passed to its successor, or refused 404 model_withdrawn.
    const first = await countedLink(profiles, request, named!, (model) => scope.models?.includes(model) ?? true);
    const who = (await upstreamServing(first.profile))?.who ?? providerOf(first.profile);
    const countTokens = await counterFor(first.profile);
    if (countTokens === undefined) {
      throw new GatewayError("upstream_error", `${who} offers no exact token count for ${first.model}.`);
    }
    const total = await countTokens(first.request, {
      deadline: clock.now() + options.attemptTimeoutMs,
      signal,
      ...(timing === undefined ? {} : { timing }),
    });
    if (total === null) {
      throw new GatewayError("upstream_error", `${who}'s token count could not be had now; retry shortly.`);
    }
    return total;
  };
}

export function createInvoke(deps: InvokeDeps): (ctx: InvokeContext) => Promise<InvokeAnswer> {
  const { options, clock, logError, profiles, counterFor, upstreamServing, causeWordsOf } = shared(deps);
  const random = deps.random ?? Math.random;
  const serviceTiers = cachedServiceTiers(deps.store, clock, options.capabilitiesTtlMs);
  const jitter = () => Math.floor(random() * options.jitterMs);
  /** models.get under way per model: the requests that meet the same 404 together share one call. */
  const confirming = new Map<string, Promise<boolean>>();

  const run = async (context: InvokeContext): Promise<InvokeAnswer> => {
    const { caller, request, requestId, signal, onQuota, onQueued, timing = untimed, cache, onCache } = context;
    /** Off the response path where the runtime allows it, else awaited (and timed: the caller waits for it). */
    const afterAnswer = async (work: Promise<unknown>) => {
      if (deps.waitUntil !== undefined) return deps.waitUntil(work);
      await timing.time("finalize", () => work);
    };
    const deadline = clock.now() + options.budgetMs;
    const chain: ChainLink[] = await resolveChain(profiles, request);
    // An embedding batch whose provider counts each input is that many requests, booked at once (embedding.ts).
    const requests = providerRequests(chain, request);
    const causeWords = await causeWordsOf(chain);
    // The answer each model is sent with, decided once: TPM and a budget in money both book it.
    const answerTokens = answerSize(chain, request);
    // The estimate (the largest over the chain's forms of the request); the provider's exact count
    // replaces it if a refusal asks for one (exact-count.ts), where the provider offers one.
    const size = new InputSize(
      request.imageTokens +
        Math.max(
          ...chain.map((l) =>
            estimateRequestTokens(l.request)
          ),
        ),
      // A provider without an exact count keeps the estimate.
      async (model) => {
        const profile = chain.find((l) => l.model === model)?.profile ?? chain[0]!.profile;
        const countTokens = await counterFor(profile);
        if (countTokens === undefined) return null;
        const tokens = await countTokens(requestFor(chain, model), { deadline, signal, timing });
        return tokens === null ? null : { tokens, by: (await upstreamServing(profile))?.who ?? providerOf(profile) };
      },
      answerTokens.tpmOutput,
      request.imageTokens,
    );
    const reserveAs = reserveCallerOf(caller);
    // The caller named the request (its own request_id): the database keeps an idempotency record.
    const idempotent = request.requestId !== undefined;
    // The invocation holding the request's claim (store/holder.ts): only its own statements renew,
    // end or complete it, and it is held until the invocation's end (a success's finalize retries
    // until then) plus two database deadlines. An unnamed request has none.
    const claim = idempotent ? { id: crypto.randomUUID(), invocationEnd: deadline } : null;

    // The tier rows (a look-up once per worker) and the caller's own tier, before anything is booked:
    // a tier its class may not ask for is a 400 without a reservation or a wait.
    const tierRows = await serviceTiers();
    if (request.serviceTier !== undefined) {
      checkAskedTier(
        tierRows,
        chain.map((l) => l.model),
        admissibleClasses(caller.kind, request.priority),
        request.serviceTier,
      );
    }

    // The response cache, before anything is booked: a hit answers here (cache/response-cache.ts).
    const cached = await startCache();
    if (cached?.kind === "hit") {
      onCache?.(cached.report);
      return { ...(cached.answer as unknown as InvokeResult), cached: cached.cached };
    }
    const flight: CacheFlight | null = cached?.kind === "flight" ? cached : null;
    // A call under way is a miss until its whole answer is stored: an error answer says so too.
    onCache?.(cached?.kind === "flight" ? { status: "miss" } : cached?.report ?? { status: "bypass" });

    const keys = new KeyExclusions();
    const waiting = { mode: request.mode, maxWaitMs: request.maxWaitMs, deadline, signal, waitedMs: 0 };
    let calls = 0;
    let unusableKeys = 0;
    let lastError: UpstreamError | null = null;
    /** Why the last key whose secret could not be read was not (no secret named), for the caller. */
    let unreadKey: KeyRefusal | "no_row" | null = null;
    /** The model this request found withdrawn last, and its successor (the answer if no call is left). */
    let withdrawn: { model: string; successor: string | null } | null = null;
    let lastReservation: Reservation | null = null;
    /** The provider shed a flex call of this request: the next asks for standard where the row says so. */
    let flexShed = false;
    /** Models whose provider answered this request that it is overloaded (UpstreamError.overloaded). */
    const overloaded = new Set<string>();
    /** The words of the provider the last call went to. */
    const lastWords = () => causeWords(lastReservation?.model ?? null);
    /** The chain's links (by index) not passed over as overloaded; null when none is left. */
    const linksLeft = (): number[] | null => {
      const left = chain.flatMap((l, i) => (overloaded.has(l.model) ? [] : [i]));
      return left.length > 0 ? left : null;
    };

    try {
      while (calls < MAX_ATTEMPTS && unusableKeys <= MAX_UNUSABLE_KEYS) {
        if (calls > 0 && clock.now() >= deadline) break;
        // A model its provider said is overloaded is passed over while the chain has another.
        const links = linksLeft() ?? chain.map((_, i) => i);
        const admission = await admit(
          { store: deps.store, clock, onQuota, onQueued, timing },
          {
            model: links[0] === 0 ? request.model : chain[links[0]!]!.model,
            fallbackModels: links.slice(1).map((i) => chain[i]!.model),
            outputTokens: links.map((i) => answerTokens.perModel[i] ?? null),
            caller: reserveAs,
            requestId,
            excludeKeyIds: keys.list(),
            // Numbered by calls to providers: a reservation whose key could not be used is made again
            // with the same number (which keeps a token's request budget counted once).
            attempt: calls + 1,
            metadata: request.metadata,
            priority: request.priority ?? null,
            // Checked (and marked in flight) until this invocation holds its first reservation;
            // later reservations belong to the same request.
            idempotent: idempotent && lastReservation === null,
            claim,
            ...(requests === 1 ? {} : { requests }),
          },
          size,
          waiting,
          { model: request.model, requestId, causeWords },
        );
        if (admission.kind === "replay") {
          await flight?.drop();
          return { ...admission.response, replayed: true };
        }
        if (admission.kind === "no_active_key") {
          if (keys.forgiveAvoided()) continue;
          throw keys.anyBroken ? exhausted(lastError, withdrawn, unreadKey, lastWords()) : noActiveKey();
        }
        const reservation = admission.reservation;
        lastReservation = reservation;

        const call = await prepareCall(reservation);
        if (call === null) {
          unusableKeys++;
          continue;
        }

        calls++;
        if (request.stream) {
          const opened = await streamUpstream(call, reservation);
          if (opened.ok) {
            if (flight !== null) onCache?.({ status: "miss" }); // kept when it ends whole
            return answerStreamed(opened, call, reservation);
          }
          lastError = opened.error;
          if (shedFlex(call.tier, opened.error)) flexShed = true;
          if (await failed(opened, reservation, call)) continue;
          break;
        }
        const outcome = await callUpstream(call, reservation);
        if (outcome.ok) return await answerWhole(outcome, call, reservation);
        lastError = outcome.error;
        if (shedFlex(call.tier, outcome.error)) flexShed = true;
        if (!(await failed(outcome, reservation, call))) break;
      }
      throw exhausted(lastError, withdrawn, unreadKey, lastWords());
    } catch (error) {
      await flight?.drop();
      // A named request that fails frees its id at once (a success stores the answer instead).
      if (idempotent && lastReservation !== null) {
        await afterAnswer(
          deps.store.endRequest(lastReservation.reservationId).catch((e) =>
            logError(`end of request ${requestId} failed: ${sanitizeError(e)}`)
          ),
        );
      }
      throw error;
    }

    /**
     * The cache's look-up for the request as its first model's provider would be sent it (the gateway's
     * tier left out, the answer it would book for it in); null where its provider has no usable row.
     */
    async function startCache() {
      if (deps.cache === undefined) return null;
      const first = chain[0]!;
      const upstream = await upstreamServing(first.profile);
      if (upstream === undefined) return null;
      const booked = bookedPerAnswer(answerTokens, 0, first.request.options.outputCount);
      const sent: ModelRequest = { ...keyedRequest(first.request), ...(booked === null ? {} : { bookedOutputTokens: booked }) };
      return await deps.cache.start({
        ask: cache ?? { mode: "default" },
        caller: reserveAs,
        requestId,
        model: first.model,
        provider: upstream.provider,
        body: () => upstream.client.wireBody?.(sent) ?? sent,
        deadline,
        maxWaitMs: request.mode === "NO_WAIT" ? 0 : request.maxWaitMs,
        signal,
        // Its look-up stands where the reservation would, and is timed as one.
        timed: (work) => timing.time("reserve", work),
      });
    }

    /**
     * A reservation made ready to call: the model it booked (normally a link of the chain; another
     * model when the caller's name now resolves to it, an alias repointed since this worker cached its
     * row), its provider's client and the key's secret (read by that provider's names: the database
     * booked a key of the model's provider), the tier to ask for, the request as that model takes it.
     * Null when the key's secret is not set: the reservation is released and the key left out.
     */
    async function prepareCall(reservation: Reservation): Promise<PreparedCall | null> {
      let link: ChainLink;
      try {
        link = await linkFor(profiles, request, chain, reservation.model);
      } catch (error) {
        await deps.store.release(reservation.reservationId, "the reserved model cannot take the request");
        throw error;
      }
      const provider = providerOf(link.profile);
      // A provider whose row is not usable here (its message is logged when the rows are read) has no key.
      const upstream = await upstreamServing(link.profile);
      const apiKey = upstream?.key(reservation.envVarName);
      if (upstream === undefined || apiKey === undefined || apiKey === "") {
        const why = upstream === undefined
          ? `provider ${provider} has no usable row`
          : upstream.key.refusal(reservation.envVarName);
        unreadKey = upstream === undefined ? "no_row" : upstream.key.refusalKind(reservation.envVarName) ?? "unset";
        logError(`key ${reservation.keyAlias} (secret ${reservation.envVarName}) not used: ${why}`);
        await deps.store.release(reservation.reservationId, "key secret not set");
        keys.markBroken(reservation.keyId);
        return null;
      }
      let choice: TierChoice;
      try {
        choice = chooseTier(
          await serviceTiers(),
          reservation.model,
          reservation.priority ?? request.priority,
          request.serviceTier,
        );
      } catch (error) {
        await deps.store.release(reservation.reservationId, "service tier not allowed for the class");
        throw error;
      }
      const tier = flexShed && choice.standardOnShed ? null : choice.tier;
      // (A model outside the chain is the first one's name resolved anew: it was booked as the first.)
      const at = Math.max(0, chain.findIndex((l) => l.model === reservation.model));
      const booked = withBookedCap(link.request, reservation, answerTokens, at);
      // The answer booked for this model, for a provider that requires a cap where the caller named none.
      const answer = bookedPerAnswer(answerTokens, at, booked.options.outputCount);
      const sent: ModelRequest = {
        ...booked,
        ...(tier === null ? {} : { serviceTier: tier }),
        ...(answer === null ? {} : { bookedOutputTokens: answer }),
      };
      return { provider, who: upstream.who, dayZone: upstream.row.day_zone, client: upstream.client, apiKey, tier, sent };
    }

    /**
     * A success's finalize, streamed or whole: the record with the request's times (read when the
     * answer's first byte leaves), the tier asked for and the one served, the provider's room (less the
     * caller's next call when the answer leaves first: room.ts). `writtenFirst`: the answer waits for it
     * (the room at or below the margin); else it goes with the others.
     */
    function finalizeSuccess(
      record: FinalizeParams,
      call: PreparedCall,
      reservation: Reservation,
      served: { servedTier?: string | null; room?: ProviderRoom | null },
      times: ReturnType<typeof answerTimes>,
      order: { writtenFirst: boolean; answeredFirst: boolean },
    ): Promise<boolean> {
      const { writtenFirst, answeredFirst } = order;
      return finalizeReliably(deps.store, logError, {
        ...record,
        ...times,
        booked: { quotaGroup: reservation.quotaGroup, model: reservation.model },
        ...(writtenFirst ? { beforeAnswer: true } : {}),
        serviceTier: call.tier,
        servedTier: served.servedTier ?? null,
        room: roomUntil(served.room, clock.now(), answeredFirst ? { bookedTokens: size.tokens } : undefined),
        statedLimits: served.room?.limits ?? null,
      }, { deadline, clock });
    }

    /** The first chunk is here: the stream is the caller's, finalized when it ends. */
    function answerStreamed(
      opened: Extract<StreamOutcome, { ok: true }>,
      call: PreparedCall,
      reservation: Reservation,
    ): InvokeAnswer {
      const times = answerTimes(timing);
      // Little left at the provider: the finalize lands before the stream's last event (room.ts).
      const writeFirst = writeBeforeAnswer(opened.room, size.tokens, reservation.quota);
      return relayStream(opened, {
        head: { ...headOf(reservation, calls, call.provider), waited_ms: waiting.waitedMs },
        reservationId: reservation.reservationId,
        upstream: call.who,
        estimatedInputTokens: size.input,
        idempotent,
        finalize: (record) =>
          finalizeSuccess(record, call, reservation, opened, times, { writtenFirst: writeFirst, answeredFirst: !writeFirst }),
        writeFirst,
        ...(flight === null ? {} : {
          settled: (whole: InvokeResult | null) =>
            whole === null ? flight.drop() : flight.keep(whole, reservation.reservationId),
        }),
        endRequest: () => deps.store.endRequest(reservation.reservationId),
        afterAnswer,
        clock,
        logError,
        signal,
      });
    }

    /**
     * The whole answer: finalized (off the response path where the runtime allows it; before the answer
     * where little is left at the provider: room.ts), then answered.
     */
    async function answerWhole(
      outcome: Extract<GenerateOutcome, { ok: true }>,
      call: PreparedCall,
      reservation: Reservation,
    ): Promise<InvokeResult> {
      const result = answer(outcome, reservation, calls, call.provider);
      const record = successRecord({
        reservationId: reservation.reservationId,
        latencyMs: outcome.latencyMs,
        ...usageCounts(bookedEmbeddingUsage(request, outcome.answer.usage, size.input)),
        response: idempotent ? result : null,
      });
      if (flight !== null) onCache?.({ status: flight.storable(result) ? "stored" : "miss" });
      const first = writeBeforeAnswer(outcome.room, size.tokens, reservation.quota);
      const answeredFirst = !first && deps.waitUntil !== undefined;
      const finalized = finalizeSuccess(record, call, reservation, outcome, answerTimes(timing), {
        writtenFirst: first,
        answeredFirst,
      });
      // Little left at the provider (room.ts): the answer waits for its finalize, a moment at most.
      const landed = first && await timing.time("finalize", () => landsWithin(finalized, WRITTEN_FIRST_WAIT_MS));
      if (landed && flight === null) return result;
      await afterAnswer(flight === null ? finalized : finalized.then(() => flight.keep(result, reservation.reservationId)));
      return result;
    }

    /**
     * A failed call: finalized (awaited: the next reservation must see its cooldown), then either
     * thrown as the caller's answer or ready for the next attempt (false: no time left for one).
     */
    async function failed(
      outcome: Extract<GenerateOutcome, { ok: false }>,
      reservation: Reservation,
      call: PreparedCall,
    ): Promise<boolean> {
      let error = outcome.error;
      if (error.class === "model_withdrawn" && !(await stillNotFound(call.client, call.apiKey, reservation.model))) {
        // This key sees the model (or the provider could not say): the mark would be wrong for everyone.
        error = { ...error, class: "client_error" };
      }
      const now = clock.now();
      const record = failureRecord({
        reservationId: reservation.reservationId,
        latencyMs: outcome.latencyMs,
        error,
        now,
        dayZone: call.dayZone,
        defaultCooldownMs: options.defaultCooldownMs,
        inputTokens: size.input,
      });
      // Money: the caller is told the rest's end (an hour, or the month's turn where it comes first).
      lastError = moneyRested(error, record.cooldownUntil, now);
      await timing.time("finalize", () =>
        finalizeReliably(deps.store, logError, { ...record, serviceTier: call.tier }, { deadline, clock }));
      if (error.class === "client_error") throw rejectedByProvider(error);
      if (error.kind === "aborted") throw cancelled();
      if (error.class === "model_withdrawn") {
        // Learned once, in the database; the key is not at fault and nothing needs to back off.
        withdrawn = { model: reservation.model, successor: (await profiles(reservation.model))?.successor ?? null };
        profiles.forget(reservation.model);
        return true;
      }
      if (error.class === "invalid_key") keys.markBroken(reservation.keyId);
      else keys.markAvoided(reservation.keyId);
      if (error.overloaded === true) overloaded.add(reservation.model);
      // Another link of the chain does not share this model's load: it is tried at once, with no backoff.
      const nextModel = error.overloaded === true && linksLeft() !== null;
      if (error.class === "retryable" && calls < MAX_ATTEMPTS && !nextModel) {
        const backoff = options.backoffBaseMs * 2 ** (calls - 1) + jitter();
        if (clock.now() + backoff >= deadline) return false;
        await clock.sleep(backoff, signal).catch(() => {
          throw cancelled();
        });
      }
      return true;
    }

    /**
     * A provider's 404 for a model is confirmed before the model is marked for every project: models.get
     * for it on the same key must answer the same kind of 404. Rare (once per withdrawal), so worth a
     * call; one at a time per model, whose answer every request waiting on it takes (each no longer
     * than its own deadline). Not bound to one caller's signal: the others still need its answer.
     */
    async function stillNotFound(upstream: UpstreamClient, apiKey: string, model: string): Promise<boolean> {
      let asked = confirming.get(model);
      if (asked === undefined) {
        const timeoutMs = Math.max(1, options.attemptTimeoutMs);
        asked = upstream.getModel({ apiKey, model, timeoutMs })
          .then((got) => !got.ok && got.error.class === "model_withdrawn", () => false)
          .finally(() => confirming.delete(model));
        confirming.set(model, asked);
      }
      const left = Math.max(1, deadline - clock.now());
      return await timing.time("upstream", () => settledWithin(asked!, left, false));
    }

    /** Opens the provider's stream and waits for its first chunk (what fails before it is an attempt like any other). */
    async function streamUpstream(call: PreparedCall, reservation: Reservation): Promise<StreamOutcome> {
      const timeoutMs = Math.max(1, Math.min(options.attemptTimeoutMs, deadline - clock.now()));
      const streamTimeoutMs = Math.max(1, deadline - clock.now());
      try {
        return await timing.time("upstream", () =>
          openStream(call.client, call.who, {
            apiKey: call.apiKey,
            request: call.sent,
            timeoutMs,
            streamTimeoutMs,
            signal,
          }));
      } catch (error) {
        await deps.store.release(reservation.reservationId, sanitizeError(error, { secrets: [call.apiKey] }));
        throw error;
      }
    }

    /** Who served: the model and its provider, why a fallback served, the key, the calls made. */
    function headOf(reservation: Reservation, attempts: number, provider: Provider) {
      // A fallback served: the answer says what was asked for and why each model before it was passed over.
      const passedOver = (reservation.fallbackFrom ?? []).filter((s) => s.model !== reservation.model);
      const fallback = reservation.model === chain[0]!.model
        ? {}
        : { requested_model: chain[0]!.model, fallback_from: fallbackSteps(passedOver) };
      return { model: reservation.model, provider, ...fallback, key_alias: reservation.keyAlias, attempts };
    }

    async function callUpstream(call: PreparedCall, reservation: Reservation): Promise<GenerateOutcome> {
      const timeoutMs = Math.max(1, Math.min(options.attemptTimeoutMs, deadline - clock.now()));
      try {
        const asked = { apiKey: call.apiKey, request: call.sent, timeoutMs, signal };
        if (call.sent.embed !== undefined && call.client.embed === undefined) {
          throw new GatewayError("unsupported_feature", `${call.who} has no embeddings.`, {
            details: { model: call.sent.model, feature: "embeddings" },
          });
        }
        return await timing.time(
          "upstream",
          () => call.sent.embed !== undefined ? call.client.embed!(asked) : call.client.generate(asked),
        );
      } catch (error) {
        // A client does not throw for failed calls; if it does anyway, give the booking back.
        await deps.store.release(reservation.reservationId, sanitizeError(error, { secrets: [call.apiKey] }));
        throw error;
      }
    }

    function answer(
      outcome: Extract<GenerateOutcome, { ok: true }>,
      reservation: Reservation,
      attempts: number,
      provider: Provider,
    ): InvokeResult {
      const { model, key_alias, ...rest } = headOf(reservation, attempts, provider);
      return {
        text: hubText(outcome.answer),
        model,
        ...rest,
        key_alias,
        usage: answerUsage(outcome.answer.usage, size.input),
        waited_ms: waiting.waitedMs,
        hub: outcome.answer,
        ...(outcome.dialectAnswer === undefined ? {} : { dialectAnswer: outcome.dialectAnswer }),
      };
    }
  };
  return run;
}
