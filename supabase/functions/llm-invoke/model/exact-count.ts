// The provider's exact count of an input (where its dialect offers one: Google's countTokens,
// Anthropic's count_tokens), asked only where the estimate (tokens.ts) would refuse it.
// The estimate errs high by about a third, so an input between ~0.75x and 1x of a model's effective
// TPM is refused `too_large` on the estimate although the provider would take it, and a large input
// can be refused `tpm` for a window its real size fits. In those two cases, once per request,
// llm-invoke asks for that count (free, its own quota) and reserves again with the exact count:
//   too_large            always (no wait can lift it; the exact count may)
//   tpm                  when the reservation books at least EXACT_COUNT_MIN_TOKENS: below that the
//                        estimate's excess (a third of it) is too small to change a window's answer
//                        often enough to pay for a call to the provider
// Ordinary requests never get here. A count that fails (network, 5xx, 429, timeout, no usable key)
// leaves the estimate in place and the refusal stands as it was: the count never fails a request.
import type { ModelRequest, Refusal } from "../contract.ts";
import { type PhaseTimer, untimed } from "../../_shared/server-timing.ts";
import type { Clock } from "../clock.ts";
import type { ActiveKey, GatewayStore } from "../store/store.ts";
import type { UpstreamClient } from "../../_shared/upstream/port.ts";
import type { Provider } from "../../_shared/providers/registry.ts";

/** A `tpm` refusal of a reservation this large (or larger) is worth an exact count. */
export const EXACT_COUNT_MIN_TOKENS = 1_000;
/** Deadline of one countTokens call (cut to what is left of the invocation's budget). */
export const COUNT_TIMEOUT_MS = 5_000;

/** Whether the provider's exact count could lift this refusal of a reservation of `tokens`. */
export function exactCountMayHelp(refusal: Pick<Refusal, "limit">, tokens: number): boolean {
  return refusal.limit === "too_large" || (refusal.limit === "tpm" && tokens >= EXACT_COUNT_MIN_TOKENS);
}

/** The provider's count of a request's input tokens; null when it could not be had. Never throws. */
export type TokenCounter = (
  request: ModelRequest,
  budget: { deadline: number; signal?: AbortSignal; timing?: PhaseTimer },
) => Promise<number | null>;

export interface TokenCounterDeps {
  store: Pick<GatewayStore, "activeKeys">;
  /** Whose keys count (the store's active keys of this provider). */
  provider: Provider;
  client: Required<Pick<UpstreamClient, "countTokens">>;
  /** Reads the provider's key from the Edge secret store by the key row's env_var_name. */
  secret: (envVarName: string) => string | undefined;
  clock: Pick<Clock, "now">;
  /** How long the list of active keys is cached per worker. */
  keysTtlMs: number;
  logError: (message: string) => void;
}

/**
 * Counts with an active key whose secret is set, taking them in turn (countTokens has a quota of
 * its own per project; turns spread it). The key list is cached per worker like the model rows.
 */
export function createTokenCounter(deps: TokenCounterDeps): TokenCounter {
  let cached: { at: number; keys: ActiveKey[] } | null = null;
  let turn = 0;

  async function usableKeys(): Promise<Array<{ key: ActiveKey; apiKey: string }>> {
    if (cached === null || deps.clock.now() - cached.at >= deps.keysTtlMs) {
      cached = { at: deps.clock.now(), keys: await deps.store.activeKeys(deps.provider) };
    }
    return cached.keys.flatMap((key) => {
      const apiKey = deps.secret(key.envVarName);
      return apiKey === undefined || apiKey === "" ? [] : [{ key, apiKey }];
    });
  }

  return async (request, budget) => {
    try {
      const keys = await usableKeys();
      if (keys.length === 0) {
        deps.logError("countTokens skipped: no active key has its secret set");
        return null;
      }
      const { key, apiKey } = keys[turn++ % keys.length]!;
      const timeoutMs = Math.min(COUNT_TIMEOUT_MS, budget.deadline - deps.clock.now());
      if (timeoutMs < 1) return null;
      const outcome = await (budget.timing ?? untimed).time(
        "upstream",
        () => deps.client.countTokens({ apiKey, request, timeoutMs, signal: budget.signal }),
      );
      if (outcome.ok) return outcome.totalTokens;
      // The classified message is sanitized of the key already.
      deps.logError(`countTokens with key ${key.keyAlias} failed: ${outcome.error.message}`);
      return null;
    } catch (error) {
      // The store's failure (already logged and sanitized there) or a client that threw anyway.
      deps.logError(`countTokens skipped: ${error instanceof Error ? error.message : String(error)}`);
      return null;
    }
  };
}

/**
 * What one request's reservations book: its input size (the estimate at first; the provider's count once a
 * refusal asked for it, at most once per request, kept for the request's later attempts), plus the
 * output booked where a model's TPM counts it.
 */
export class InputSize {
  /** What the next reservation books. */
  tokens: number;
  /** The provider's count, once asked and answered, and who counted (its name, for messages). */
  counted: number | null = null;
  countedBy: string | null = null;
  private asked = false;

  /**
   * `count` asks the provider for the input as `model` takes it (the refusal's model in a chain).
   * `bookedOutput`: the output tokens booked on top of the input where a model's TPM counts them
   * (OpenAI's max_tokens); 0 where TPM counts input only.
   */
  constructor(
    readonly estimated: number,
    private readonly count: (model: string | null) => Promise<{ tokens: number; by: string } | null>,
    readonly bookedOutput = 0,
    /** Of `estimated`, the tokens the request's images count (named when they make it too large). */
    readonly imageTokens = 0,
  ) {
    this.tokens = estimated + bookedOutput;
  }

  /** The input alone: what the answer reports when the provider counts none. */
  get input(): number {
    return this.tokens - this.bookedOutput;
  }

  /** After a refusal: true when the provider's count is now known and the reservation should be made again with it. */
  async recount(refusal: Pick<Refusal, "limit" | "model">): Promise<boolean> {
    if (this.asked || !exactCountMayHelp(refusal, this.tokens)) return false;
    this.asked = true;
    const counted = await this.count(refusal.model ?? null);
    if (counted === null) return false;
    this.counted = counted.tokens;
    this.countedBy = counted.by;
    this.tokens = counted.tokens + this.bookedOutput;
    return true;
  }
}
