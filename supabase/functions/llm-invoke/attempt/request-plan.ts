// One request's plan, decided once before its first reservation and only read after: the operation it
// runs, its chain of models, its size and the answer each model is sent with, how it books (its caller,
// its claim), its deadline. The attempt loop (invoke.ts) and its units (call.ts, failure.ts, success.ts,
// cache-first.ts) take it as a record; none of them changes it.
import type { CallRequest, QuotaSnapshot, ReserveCaller, ServiceTierRow } from "../contract.ts";
import { type PhaseTimer, untimed } from "../../_shared/server-timing.ts";
import type { CacheAsk, CacheReport } from "../cache/ask.ts";
import { InputSize } from "../model/exact-count.ts";
import { type ChainLink, resolveChain } from "../model/model-chain.ts";
import type { AnswerSize } from "./answer-size.ts";
import { reserveCallerOf } from "./caller.ts";
import type { InvokeContext, QueueProgress } from "./context.ts";
import { generation } from "./generation.ts";
import type { Operation } from "./operation.ts";
import type { CauseWords } from "./refusals.ts";
import { admissibleClasses, checkAskedTier } from "./service-tiers.ts";
import { providerOf, type WorkerParts } from "./worker.ts";

export interface RequestPlan {
  request: CallRequest;
  requestId: string;
  signal: AbortSignal;
  timing: PhaseTimer;
  onQuota: ((quota: QuotaSnapshot) => void) | undefined;
  onQueued: ((progress: QueueProgress) => void) | undefined;
  /** What the request asks of the response cache; undefined: the owner's default. */
  cacheAsk: CacheAsk | undefined;
  onCache: ((report: CacheReport) => void) | undefined;
  operation: Operation;
  chain: ChainLink<{ model: string }>[];
  /** How many requests one call is at its provider (a batch its provider counts per input is more), booked at once. */
  requests: number;
  causeWords: (model: string | null) => CauseWords;
  /** The answer each model is sent with, decided once: TPM and a budget in money both book it. */
  answerTokens: AnswerSize;
  size: InputSize;
  reserveAs: ReserveCaller;
  /** The caller named the request (its own request_id): the database keeps an idempotency record. */
  idempotent: boolean;
  /** The claim this invocation holds on a named request (store/holder.ts); null: unnamed. */
  claim: { id: string; invocationEnd: number } | null;
  /** The invocation's end (clock ms). */
  deadline: number;
  /** Off the response path where the runtime allows it, else awaited (and timed: the caller waits for it). */
  afterAnswer: (work: Promise<unknown>) => Promise<void>;
  /** The runtime lets work run after the answer has left (waitUntil): the answer need not wait for it. */
  answersFirst: boolean;
}

/** The operation a context runs: the one it names, else a generation of its request. */
function operationOf(context: InvokeContext): Operation {
  return context.operation === undefined ? generation(context.request) : context.operation;
}

/**
 * The request's plan; throws the caller's answer where its chain cannot take it or it asks a tier its
 * class may not (a 400 without a reservation or a wait: the tier rows are looked up once per worker).
 */
export async function planRequest(
  worker: WorkerParts,
  serviceTiers: () => Promise<readonly ServiceTierRow[]>,
  waitUntil: ((promise: Promise<unknown>) => void) | undefined,
  context: InvokeContext,
): Promise<RequestPlan> {
  const { caller, request, requestId, signal, timing = untimed } = context;
  const { clock, options, profiles, counterFor, upstreamServing } = worker;
  const operation = operationOf(context);
  const afterAnswer = async (work: Promise<unknown>) => {
    if (waitUntil !== undefined) return waitUntil(work);
    await timing.time("finalize", () => work);
  };
  const deadline = clock.now() + options.budgetMs;
  const chain: ChainLink<{ model: string }>[] = await resolveChain(profiles, request, (row) => operation.fit(row));
  const requests = operation.requests(chain);
  const causeWords = await worker.causeWordsOf(chain);
  const answerTokens = operation.answerSize(chain);
  // The estimate (the largest over the chain's forms of the request); the provider's exact count
  // replaces it if a refusal asks for one (exact-count.ts), where the provider offers one.
  const size = new InputSize(
    operation.estimate(chain),
    // A provider without an exact count keeps the estimate.
    async (model) => {
      const link = chain.find((l) => l.model === model) ?? chain[0]!;
      const counted = operation.counted(link.request);
      const countTokens = counted === null ? undefined : await counterFor(link.profile);
      if (counted === null || countTokens === undefined) return null;
      const tokens = await countTokens(counted, { deadline, signal, timing });
      return tokens === null ? null : { tokens, by: (await upstreamServing(link.profile))?.who ?? providerOf(link.profile) };
    },
    answerTokens.tpmOutput,
    operation.imageTokens,
  );
  const reserveAs = reserveCallerOf(caller);
  const idempotent = request.requestId !== undefined;
  // The invocation holding the request's claim (store/holder.ts): only its own statements renew,
  // end or complete it, and it is held until the invocation's end (a success's finalize retries
  // until then) plus two database deadlines. An unnamed request has none.
  const claim = idempotent ? { id: crypto.randomUUID(), invocationEnd: deadline } : null;

  // The caller's own tier, before anything is booked.
  const tierRows = await serviceTiers();
  if (request.serviceTier !== undefined) {
    checkAskedTier(
      tierRows,
      chain.map((l) => l.model),
      admissibleClasses(caller.kind, request.priority),
      request.serviceTier,
    );
  }
  return {
    request,
    requestId,
    signal,
    timing,
    onQuota: context.onQuota,
    onQueued: context.onQueued,
    cacheAsk: context.cache,
    onCache: context.onCache,
    operation,
    chain,
    requests,
    causeWords,
    answerTokens,
    size,
    reserveAs,
    idempotent,
    claim,
    deadline,
    afterAnswer,
    answersFirst: waitUntil !== undefined,
  };
}
