// Stable codes of details.field that every route gives, whatever its dialect: callers branch on them, so
// they are the fields' names in the native body, the bot's contract (Gemini-shaped by it).
/**
 * details.field of a refused output cap on every route (a stable code: the field the gateway's first
 * routes, Gemini's shape, name it by); the message names the route's own field.
 */
export const OUTPUT_CAP_CODE = "generationConfig.maxOutputTokens";

/** details.field of a refused image on every route, after its part's path (a stable code, as above). */
export const IMAGE_FIELD_CODE = "inlineData";

/**
 * details.field of an option a model refuses to be set (its row's refuses_thinking_budget,
 * refuses_sampling) on every route, by the hub's option (a stable code, as above).
 */
export const REFUSABLE_OPTION_CODES = {
  temperature: "generationConfig.temperature",
  topP: "generationConfig.topP",
  topK: "generationConfig.topK",
  thinkingBudget: "generationConfig.thinkingConfig.thinkingBudget",
} as const;
