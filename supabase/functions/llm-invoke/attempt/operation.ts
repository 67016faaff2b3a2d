// What the attempt loop runs: one kind of call to a provider (a generation, or another operation a
// route asks for), bound to its request. The loop books, calls, retries, finalizes and answers every
// operation alike (invoke.ts); the operation says what differs: the request as each model of the chain
// takes it, how large it is, what its call to the provider is and what a success answers. A generation
// (generation.ts) is what the loop runs unless its context names another operation; another operation
// lives in its own folder, beside the loop, and names nothing of it but this port.
import type { DialectAnswer, HubAnswer, HubUsage } from "../../_shared/upstream/hub.ts";
import type { ProviderRoom, StreamOutcome, UpstreamClient, UpstreamError } from "../../_shared/upstream/port.ts";
import type { ModelProfile, ModelRequest, Reservation } from "../contract.ts";
import type { ChainLink } from "../model/model-chain.ts";
import type { AnswerSize } from "./answer-size.ts";
import type { TierChoice } from "./service-tiers.ts";

/** One call as the loop makes it: the key, the request as the booked model takes it, the deadline. */
export interface OperationCall<S> {
  apiKey: string;
  request: S;
  timeoutMs: number;
  signal?: AbortSignal;
}

/** What a success answers the caller beside who served and what it cost (InvokeResult's own fields). */
export interface AnswerParts {
  text: string;
  hub?: HubAnswer;
  dialectAnswer?: DialectAnswer;
  vectors?: number[][];
}

/** A call's outcome as the loop reads it, whatever the operation. */
export type OperationOutcome =
  | {
    ok: true;
    latencyMs: number;
    /** The provider's count; null: it sent none (the operation's `unsaidUsage` then stands). */
    usage: HubUsage | null;
    answer: AnswerParts;
    /** The tier the provider says served; null: not said. */
    servedTier?: string | null;
    /** What the provider says is left of the group's limits, where it says so. */
    room?: ProviderRoom | null;
  }
  | { ok: false; error: UpstreamError; latencyMs: number };

/** What the booking decided for the call: the reservation, the answer booked, the model's place, the tier. */
export interface Booked {
  reservation: Pick<Reservation, "bookedUsd">;
  answer: AnswerSize;
  /** The reserved model's place in the chain. */
  index: number;
  tier: TierChoice["tier"];
}

/**
 * One operation bound to its request. `S`: the request as one model takes it (what its provider is
 * given: the hub's request for a generation).
 */
export interface Operation<S extends { model: string } = { model: string }> {
  /** The request as `profile`'s model takes it; throws GatewayError where that model cannot. */
  fit(profile: ModelProfile): S;
  /** The input tokens estimated for the chain (the largest of its forms of the request), images included. */
  estimate(chain: readonly ChainLink<S>[]): number;
  /** Of the estimate, the tokens of the request's images (named when they make it too large). */
  imageTokens: number;
  /** The answer each model is sent with, booked by TPM where it counts answers and by a budget in money. */
  answerSize(chain: readonly ChainLink<S>[]): AnswerSize;
  /** How many requests one call is at its provider, booked at once (1 for most calls). */
  requests(chain: readonly ChainLink<S>[]): number;
  /** The request as the provider's exact count of its input takes it; null: it is not counted. */
  counted(request: S): ModelRequest | null;
  /** What the response cache keys on: the body `client` would send for the chain's first link. */
  cacheBody(client: UpstreamClient, request: S, answer: AnswerSize): unknown;
  /** The request as sent, with what the booking decided (the tier, the answer booked as its cap). */
  prepared(request: S, booked: Booked): S;
  /** One whole call; throws GatewayError where the provider cannot make it at all (`who`: its name). */
  call(client: UpstreamClient, call: OperationCall<S>, who: string): Promise<OperationOutcome>;
  /** The usage booked where the provider's answer names none; null: the estimate stands. */
  unsaidUsage(bookedInput: number): HubUsage | null;
  /** Set where the request asks to stream: opens the stream and waits for its first chunk. */
  stream?(client: UpstreamClient, who: string, call: OperationCall<S> & { streamTimeoutMs: number }): Promise<StreamOutcome>;
}
