// The answer's size, decided once per request: the most output tokens each model of its chain is sent
// with. The reservation books it twice from the same figure: in the model's TPM where its TPM counts
// answers (OpenAI's rule), and in a budget in money (the token's, its client's or a service caller's:
// google_ai_worst_call_cost). It is the caller's own max tokens (a scoped token's is never above its
// client's cap: caller.ts), else the model row's `answerTokens`; and where a budget in money booked it
// for a request that names none, it is sent as the call's cap (the hub's maxOutputTokens, which each
// dialect sends as its provider's own field), so the answer
// cannot cost more than was booked: a longer one ends as the provider says (`length`, `MAX_TOKENS`).
import type { ModelProfile, ModelRequest, Reservation } from "../contract.ts";
import type { HubOptions } from "../../_shared/upstream/hub.ts";

/** The part of a request that says what answer is asked: its options' output cap and answer count. */
type WithOptions = { options: Pick<HubOptions, "maxOutputTokens" | "outputCount"> };

/** One request's answer, per model of its chain (its first model, then its fallbacks). */
export interface AnswerSize {
  /** The output tokens each model is sent with, for all its answers (n); null: not known. */
  readonly perModel: readonly (number | null)[];
  /** The output booked on top of the input in TPM: the largest over the models whose TPM counts answers. */
  readonly tpmOutput: number;
}

/** The answer each model is sent with: the caller's max tokens, else the row's, times the answers asked (n). */
export function answerSize(
  chain: readonly { profile: Pick<ModelProfile, "answerTokens" | "bookedOutputTokens"> }[],
  request: WithOptions,
): AnswerSize {
  const answers = request.options.outputCount ?? 1;
  const perModel = chain.map((l) => {
    const cap = request.options.maxOutputTokens || l.profile.answerTokens;
    return cap === undefined ? null : cap * answers;
  });
  const tpmOutput = Math.max(0, ...chain.map((l, i) => (l.profile.bookedOutputTokens === undefined ? 0 : perModel[i] ?? 0)));
  return { perModel, tpmOutput };
}

/**
 * The request as sent: with the answer the reservation booked as its cap where a budget in money
 * booked it and the request names none (`index`: the reserved model's place in the chain).
 */
export function withBookedCap(
  request: ModelRequest,
  reservation: Pick<Reservation, "bookedUsd">,
  size: AnswerSize,
  index: number,
): ModelRequest {
  if (reservation.bookedUsd === undefined || request.options.maxOutputTokens) return request;
  const cap = bookedPerAnswer(size, index, request.options.outputCount);
  return cap === null ? request : { ...request, options: { ...request.options, maxOutputTokens: cap } };
}

/** One answer's share of what was booked for the model at `index` (at least 1); null: not known. */
export function bookedPerAnswer(size: AnswerSize, index: number, outputCount?: number): number | null {
  const booked = size.perModel[index] ?? null;
  return booked === null ? null : Math.max(1, Math.floor(booked / (outputCount ?? 1)));
}
