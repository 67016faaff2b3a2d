// An embedding, an operation of its own (../attempt/operation.ts): the attempt loop books, calls,
// retries, finalizes and answers it as any call; what is an embedding's own is here.
//
// How many requests it is at its provider: one for a batch the provider counts as one request
// (OpenAI), one per input where the model's row says the provider counts each input of a batch
// (google_ai_embedding_models.counts_each_input: Google's batchEmbedContents). The reservation books
// them all at once, before the call (google_ai_reserve_models' p_requests): the model's minute, day,
// shares and budgets count every one or none, so the batch is sent whole, as one call and one attempt
// row, and served whole, every vector in order. More than the model's minute or what is left of its
// day is refused at once by name (too_large, cause over_rpm: a 400; over_rpd: the day's 429, until its
// turn); a batch the provider cannot take in one call (Google's 100 inputs: the row's max_batch) is
// refused before any reservation (fit.ts), so every call that leaves has its row.
//
// Its input is estimated as one turn of its texts (model/tokens.ts), its token ids one each; no output
// is booked. Google's answer names no token count: the input booked is the usage and the cost.
import { GatewayError } from "../../_shared/errors.ts";
import type { HubEmbedRequest } from "../../_shared/upstream/hub.ts";
import type { UpstreamClient } from "../../_shared/upstream/port.ts";
import type { Operation, OperationCall, OperationOutcome } from "../attempt/operation.ts";
import type { InvokeResult } from "../attempt/context.ts";
import type { EmbeddingRequest, ModelProfile, ModelRequest } from "../contract.ts";
import { estimateTextTokens, REQUEST_OVERHEAD, TURN_OVERHEAD } from "../model/tokens.ts";
import { fitEmbedding } from "./fit.ts";

export function embedding(request: EmbeddingRequest): Operation<HubEmbedRequest> {
  const texts = request.embed.inputs.filter((i): i is string => typeof i === "string");
  return {
    fit: (profile) => fitEmbedding(profile, request),
    // The same inputs for every model of the chain: one figure.
    estimate: () => estimatedInput(texts) + request.tokenIds,
    imageTokens: 0,
    // An embedding answers vectors, no tokens: nothing is booked for its answer.
    answerSize: (chain) => ({ perModel: chain.map(() => 0), tpmOutput: 0 }),
    requests: (chain) => providerRequests(chain, request),
    counted: (sent) => countedInput(sent.model, texts),
    cacheBody: (_client, sent) => sent,
    prepared: (sent) => sent,
    call: embed,
    unsaidUsage: (booked) => ({
      inputTokens: booked,
      outputTokens: 0,
      thinkingTokens: 0,
      cachedInputTokens: 0,
      totalTokens: booked,
    }),
  };
}

/**
 * The requests a batch is booked as: its inputs where a model of its chain counts each input, else one.
 * One figure for the whole chain (the reservation's): the most any of its models counts, so a model that
 * counts each input is never booked fewer.
 */
export function providerRequests(chain: readonly { profile: ModelProfile }[], request: EmbeddingRequest): number {
  const inputs = request.embed.inputs.length;
  if (inputs <= 1) return 1;
  return chain.some((l) => l.profile.embedding?.countsEachInput === true) ? inputs : 1;
}

/** The texts' estimate as one turn of the request (tokens.ts's rule, as any request's input). */
function estimatedInput(texts: readonly string[]): number {
  if (texts.length === 0) return REQUEST_OVERHEAD;
  return texts.reduce((n, text) => n + estimateTextTokens(text), REQUEST_OVERHEAD + TURN_OVERHEAD);
}

/** The texts as the provider's exact count takes an input (Google's countTokens): one turn of them. */
function countedInput(model: string, texts: readonly string[]): ModelRequest {
  const parts = texts.map((text) => ({ type: "text" as const, text }));
  return { model, messages: parts.length === 0 ? [] : [{ role: "user", parts }], options: {} };
}

/** One embedding call, its vectors as the loop reads them; a provider with no embeddings cannot be called. */
async function embed(client: UpstreamClient, call: OperationCall<HubEmbedRequest>, who: string): Promise<OperationOutcome> {
  if (client.embed === undefined) {
    throw new GatewayError("unsupported_feature", `${who} has no embeddings.`, {
      details: { model: call.request.model, feature: "embeddings" },
    });
  }
  const outcome = await client.embed(call);
  if (!outcome.ok) return outcome;
  return {
    ok: true,
    latencyMs: outcome.latencyMs,
    usage: outcome.answer.usage,
    answer: { text: "", vectors: outcome.answer.vectors },
    ...(outcome.room === undefined ? {} : { room: outcome.room }),
  };
}

/** An answer's vectors, in its inputs' order (an answer stored by an earlier release: in its hub answer). */
export function vectorsOf(result: InvokeResult): number[][] {
  return result.vectors ?? (result.hub as { embeddings?: number[][] } | undefined)?.embeddings ?? [];
}
