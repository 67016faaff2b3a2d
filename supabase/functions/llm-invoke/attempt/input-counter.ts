// The count-tokens routes: the provider's count of a request's input as the model takes it. It books
// no quota: a provider's count is free and has its own quota there.
import type { NormalizedRequest } from "../contract.ts";
import { GatewayError } from "../../_shared/errors.ts";
import type { PhaseTimer } from "../../_shared/server-timing.ts";
import { fitGeneration } from "../model/adapt.ts";
import { resolveChain } from "../model/model-chain.ts";
import { requireModel, type Scope } from "./caller.ts";
import { countedLink } from "./counted-model.ts";
import { type InvokeDeps, providerOf, workerParts } from "./worker.ts";

/** The count of a request's input; throws when no count can be had. */
export function createInputCounter(
  deps: Pick<InvokeDeps, "store" | "providers" | "options" | "clock" | "logError">,
): (
  request: NormalizedRequest,
  signal: AbortSignal,
  scope?: Scope,
  timing?: PhaseTimer,
) => Promise<number> {
  const { options, clock, profiles, counterFor, upstreamServing } = workerParts(deps);
  return async (request, signal, scope = {}, timing) => {
    const [named] = await resolveChain(profiles, { ...request, fallbackModels: [] }, fitGeneration(request));
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
