// How many requests an embedding call is at its provider: one for a batch the provider counts as one
// request (OpenAI), one per input where the model's row says the provider counts each input of a batch
// (google_ai_embedding_models.counts_each_input: Google's batchEmbedContents). The reservation books
// them all at once, before the call (google_ai_reserve_models' p_requests): the model's minute, day,
// shares and budgets count every one or none, so the batch is sent whole, as one call and one attempt
// row, and served whole, every vector in order. More than the model's minute or what is left of its
// day is refused at once by name (too_large, cause over_rpm: a 400; over_rpd: the day's 429, until its
// turn); a batch the provider cannot take in one call (Google's 100 inputs: the row's max_batch) is
// refused before any reservation (model/adapt.ts), so every call that leaves has its row. Google's
// answer names no token count: the input booked is the usage and the cost (bookedEmbeddingUsage).
import type { HubUsage } from "../../_shared/upstream/hub.ts";
import type { ModelProfile, NormalizedRequest } from "../contract.ts";

/**
 * The requests a batch is booked as: its inputs where a model of its chain counts each input, else one.
 * One figure for the whole chain (the reservation's): the most any of its models counts, so a model that
 * counts each input is never booked fewer.
 */
export function providerRequests(chain: readonly { profile: ModelProfile }[], request: NormalizedRequest): number {
  const inputs = request.embed?.inputs.length ?? 0;
  if (inputs <= 1) return 1;
  return chain.some((l) => l.profile.embedding?.countsEachInput === true) ? inputs : 1;
}

/**
 * The usage an embedding is booked with when its provider's answer names none (Google's embedContent and
 * batchEmbedContents): the input the reservation booked, no output, so the answer's usage, the attempt
 * row's tokens and its cost are one figure. Null for any other answer: its provider's counts, or none.
 */
export function bookedEmbeddingUsage(
  request: NormalizedRequest,
  usage: HubUsage | null,
  bookedInput: number,
): HubUsage | null {
  if (usage !== null || request.embed === undefined) return usage;
  return { inputTokens: bookedInput, outputTokens: 0, thinkingTokens: 0, cachedInputTokens: 0, totalTokens: bookedInput };
}
