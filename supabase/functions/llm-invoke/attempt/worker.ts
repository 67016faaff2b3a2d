// What one worker keeps for every request it serves, and the attempt loop (invoke.ts) and the
// count-tokens route (input-counter.ts) both read: the options, the clock, the model rows cached, the
// provider serving a model, its words for a refusal's cause, and the exact count of each provider
// that offers one. Built once per worker; nothing of one request is kept here.
import type { ModelProfile } from "../contract.ts";
import type { Provider } from "../../_shared/providers/registry.ts";
import type { ProviderDirectory, Upstream } from "../../_shared/providers/directory.ts";
import { type Clock, systemClock } from "../clock.ts";
import { cachedProfiles, type ProfileCache } from "../model/capabilities.ts";
import { createTokenCounter, type TokenCounter } from "../model/exact-count.ts";
import type { ChainLink } from "../model/model-chain.ts";
import { quotaCauseWords } from "../../_shared/vocabulary.ts";
import type { CauseWords } from "./refusals.ts";
import { DEFAULT_INVOKE_OPTIONS, type InvokeOptions } from "./settings.ts";
import type { ResponseCache } from "../cache/response-cache.ts";
import type { GatewayStore } from "../store/store.ts";

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

export const providerOf = (profile: ModelProfile): Provider => profile.provider;

/** The worker's parts the attempt loop and the count-tokens route share. */
export interface WorkerParts {
  store: GatewayStore;
  options: InvokeOptions;
  clock: Clock;
  logError: (message: string) => void;
  /** The provider serving `profile`'s model, or undefined when its row is not usable here. */
  upstreamServing: (profile: ModelProfile) => Promise<Upstream | undefined>;
  /**
   * The words of the provider serving each model of the chain (a refusal's cause said as that provider
   * says it), by the model a refusal names (null: the chain's first); the gateway's own where a
   * provider's row is not usable here.
   */
  causeWordsOf: (
    chain: readonly Pick<ChainLink<unknown>, "model" | "profile">[],
  ) => Promise<(model: string | null) => CauseWords>;
  profiles: ProfileCache;
  /** The exact count of the provider serving `profile`'s model; undefined: it offers none. */
  counterFor: (profile: ModelProfile) => Promise<TokenCounter | undefined>;
}

export function workerParts(
  deps: Pick<InvokeDeps, "store" | "providers" | "options" | "clock" | "logError">,
): WorkerParts {
  const options = { ...DEFAULT_INVOKE_OPTIONS, ...deps.options };
  const clock = deps.clock ?? systemClock;
  const logError = deps.logError ?? ((m: string) => console.error(`[llm-invoke] ${m}`));
  // One counter per usable provider row (a row read again makes a new one).
  const counters = new WeakMap<Upstream, TokenCounter>();
  const upstreamServing = async (profile: ModelProfile) => (await deps.providers()).upstream(providerOf(profile));
  return {
    store: deps.store,
    options,
    clock,
    logError,
    upstreamServing,
    causeWordsOf: async (chain) => {
      const byModel = new Map<string, CauseWords>();
      for (const link of chain) {
        const upstream = await upstreamServing(link.profile).catch(() => undefined);
        if (upstream !== undefined) byModel.set(link.model, (cause) => upstream.causeWords(cause));
      }
      const first = chain[0]!.model;
      return (model) => byModel.get(model ?? first) ?? byModel.get(first) ?? quotaCauseWords;
    },
    profiles: cachedProfiles(deps.store, clock, options.capabilitiesTtlMs),
    counterFor: async (profile) => {
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
