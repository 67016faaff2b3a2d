// Options a model refuses to be set, as its row says (refuses_thinking_budget, refuses_sampling):
// Claude's 5.x models decide how long they think and how they sample, and their provider answers 400
// to a thinking budget or to temperature, top-p or top-k other than the default. Such a request is
// refused here, by name, before any call, as a capability the model lacks is (adapt.ts).
import { GatewayError } from "../../_shared/errors.ts";
import type { HubOptions } from "../../_shared/upstream/hub.ts";
import type { ModelCapabilities, NormalizedRequest, RefusableOption } from "../contract.ts";
import { REFUSABLE_OPTION_CODES } from "../field-codes.ts";

/**
 * Sampling as a model left to itself does it: Anthropic's defaults (temperature 1, top_p 1: no
 * nucleus cut; top_k has none, so any value is set). A caller that sends the default asks nothing.
 */
const SAMPLING_DEFAULTS: Record<"temperature" | "topP" | "topK", number | undefined> = {
  temperature: 1,
  topP: 1,
  topK: undefined,
};

/** Throws a 400 unsupported_feature naming the first option the request sets that the model refuses. */
export function checkRefusedOptions(
  caps: Pick<ModelCapabilities, "model" | "refusesThinkingBudget" | "refusesSampling">,
  req: Pick<NormalizedRequest, "options" | "optionFields">,
): void {
  const words = (option: RefusableOption) => req.optionFields?.[option] ?? REFUSABLE_OPTION_CODES[option];
  if (caps.refusesThinkingBudget === true && asksThinkingBudget(req.options)) {
    throw refused(
      caps.model,
      "thinkingBudget",
      `${caps.model} takes no thinking budget (${words("thinkingBudget")}): it decides how long it thinks; omit it.`,
    );
  }
  if (caps.refusesSampling !== true) return;
  for (const option of ["temperature", "topP", "topK"] as const) {
    const value = req.options[option];
    if (value === undefined || value === SAMPLING_DEFAULTS[option]) continue;
    const fallback = SAMPLING_DEFAULTS[option];
    const takes = fallback === undefined ? `no ${words(option)}` : `${words(option)} only at its default, ${fallback}`;
    throw refused(caps.model, option, `${caps.model} takes ${takes} (asked: ${value}): it samples as it decides; omit it.`);
  }
}

/** A budget that reaches the provider: a positive one (0 turns thinking off; Gemini's -1 is the model's choice). */
function asksThinkingBudget(options: HubOptions): boolean {
  const budget = options.thinking?.budgetTokens;
  return budget !== undefined && budget > 0;
}

/** details.feature is stable (thinking_budget, sampling), details.field the option's stable code; the message names the caller's field. */
function refused(model: string, option: RefusableOption, message: string): GatewayError {
  return new GatewayError("unsupported_feature", message, {
    details: {
      model,
      feature: option === "thinkingBudget" ? "thinking_budget" : "sampling",
      field: REFUSABLE_OPTION_CODES[option],
    },
  });
}
