// The models a request may be served by, in order: its `model`, then its `fallback_models`, or,
// when it names none, the fallback chain of the model's row (google_ai_model_limits.fallback_models).
// Each link carries the request as that model takes it (adapt.ts: Gemma gets the system prompt folded
// into the first user turn; another operation's request fitted by its own `fit`), so whichever model
// the reservation lands on is called correctly.
//
// What the caller wrote is held to it: an unknown model or one that cannot take the request (JSON mode
// on Gemma) is a 400. A row's chain is the operator's: such models are left out of it silently, as are
// retired rows (is_active = false), which can serve nobody. A retired first model stays first: the
// database passes over it (and records why) and the answer names what it asked for.
import { GatewayError } from "../../_shared/errors.ts";
import type { CallRequest, ModelProfile, ModelRequest } from "../contract.ts";

/** `S`: the request as one model takes it (a generation's: the hub's request its provider is given). */
export interface ChainLink<S = ModelRequest> {
  /** Canonical model id. */
  model: string;
  /** The request as this model takes it. */
  request: S;
  /** The model's row as the chain was resolved from it (whether it is withdrawn, its successor). */
  profile: ModelProfile;
}

/** The models a request names: its first, and its fallbacks (absent: the row's own chain). */
type Named = Pick<CallRequest, "model" | "fallbackModels">;

/** The request fitted to each model by `fit` (a generation's: adapt.ts's `fitGeneration`). */
export async function resolveChain<S>(
  profile: (model: string) => Promise<ModelProfile | null>,
  request: Named,
  fit: (row: ModelProfile) => S,
): Promise<ChainLink<S>[]> {
  const first = await profile(request.model);
  if (first === null) throw unknownModel(request.model);
  const links: ChainLink<S>[] = [{ model: first.model, request: fit(first), profile: first }];

  const fromCaller = request.fallbackModels !== undefined;
  for (const name of request.fallbackModels ?? first.fallbackModels) {
    const next = await profile(name);
    if (next === null) {
      if (fromCaller) throw unknownModel(name);
      continue;
    }
    if (!next.active || links.some((l) => l.model === next.model)) continue;
    try {
      links.push({ model: next.model, request: fit(next), profile: next });
    } catch (error) {
      if (fromCaller) throw error;
    }
  }
  // A retired model with nothing to fall back to is unknown, as it was before chains.
  if (!first.active && links.length === 1) throw unknownModel(request.model);
  return links;
}

/**
 * The link of the model a reservation booked. Normally one of the chain's; when the database resolved
 * the caller's name to a model the chain does not name (the operator repointed an alias since this
 * worker cached the name's row), that model's row is read and the request fitted to it, so the provider is
 * called for the model whose quota was booked. Throws as resolveChain does when the request does not
 * fit that model (JSON mode or tools it lacks), and a 503 when the booked model has no row any more
 * (removed since it was booked): nothing says how it takes the request, and another model's form of
 * it (Gemma 3's folded system prompt) is not sent in its place.
 */
export async function linkFor<S>(
  profile: (model: string) => Promise<ModelProfile | null>,
  links: readonly ChainLink<S>[],
  model: string,
  fit: (row: ModelProfile) => S,
): Promise<ChainLink<S>> {
  const known = links.find((l) => l.model === model);
  if (known !== undefined) return known;
  const row = await profile(model);
  if (row === null) throw bookedWithoutRow(model);
  return { model, request: fit(row), profile: row };
}

function bookedWithoutRow(model: string): GatewayError {
  return new GatewayError(
    "unavailable",
    `Model ${model}, which this request was booked on, has no row now (removed meanwhile): retry the request.`,
    { details: { model } },
  );
}

/** The request as the reserved model takes it (the first link's if the model is not in the chain). */
export function requestFor<S>(links: readonly ChainLink<S>[], model: string | null | undefined): S {
  return (links.find((l) => l.model === model) ?? links[0]!).request;
}

/** A model the request names that has no row (by id or alias). */
export function unknownModel(model: string): GatewayError {
  return new GatewayError("unknown_model", `Unknown model ${model}: use a model listed in google_ai_model_limits.`, {
    details: { model },
  });
}
