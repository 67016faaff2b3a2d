// Fits a normalized request to what the model can do, in the hub's words. Capabilities come from the
// model's row in google_ai_model_limits, so a new model with the same quirks is a row, not a code change.
// A model without system instructions (Gemma on the Gemini API rejects them: "Developer instruction is
// not enabled") gets the system prompt folded into the first user turn; JSON output, tools and images
// a model lacks are refused with a clear 400 naming the caller's field instead of the provider's
// opaque one, and so is what only another dialect's models honour (the request's `only`) and an option
// the model refuses to be set (refused-options.ts: a thinking budget, sampling, on Claude 5.x). An
// embedding model generates nothing: a generation is refused by it by name (an embedding is fitted to
// its model by embedding/fit.ts).
import { GatewayError } from "../../_shared/errors.ts";
import { MAX_ISSUES } from "../../_shared/validation.ts";
import { checkRefusedOptions } from "./refused-options.ts";
import type { HubMessage } from "../../_shared/upstream/hub.ts";
import type { Ask, CallRequest, ModelCapabilities, ModelProfile, ModelRequest, NormalizedRequest } from "../contract.ts";

/** `ask.feature` is details.feature (stable); `ask.words` names the caller's field for people. */
function unsupported(model: string, ask: Ask, advice: string): GatewayError {
  return new GatewayError("unsupported_feature", `${model} does not support ${ask.words}; ${advice}`, {
    details: { model, feature: ask.feature },
  });
}

const IMAGES: Ask = { feature: "images", words: "images" };

/**
 * Whether the model's provider speaks a dialect at an endpoint: OpenAI's Responses API only where the
 * provider row says it has one (a compatible service of dialect openai may serve chat completions alone).
 */
function speaks(
  caps: Partial<Pick<ModelProfile, "dialect" | "hasResponsesApi">>,
  spoken: { dialect: string; endpoint?: string },
): boolean {
  if (spoken.dialect !== caps.dialect) return false;
  return spoken.endpoint !== "responses" || caps.hasResponsesApi === true;
}

/**
 * What only another dialect's models honour (the request's `only`) is refused by name by this model:
 * every operation's request is held to it.
 */
export function checkOnly(
  caps: Pick<ModelCapabilities, "model"> & Partial<Pick<ModelProfile, "dialect" | "hasResponsesApi">>,
  asked: CallRequest["only"],
): void {
  const only = asked !== undefined && !speaks(caps, asked) ? asked.fields : [];
  if (only.length === 0) return;
  // The fields are the caller's keys: at most MAX_ISSUES named, as a validation refusal names.
  const listed = only.slice(0, MAX_ISSUES);
  const more = only.length > MAX_ISSUES ? `; and ${only.length - MAX_ISSUES} more` : "";
  throw new GatewayError(
    "unsupported_feature",
    `Not supported by ${caps.model}: ${listed.map((f) => `${f.field} (${f.why})`).join("; ")}${more}.`,
    { details: { model: caps.model, field: only[0]!.field, features: listed.map((f) => f.field) } },
  );
}

export function adaptToModel(
  caps: ModelCapabilities & Partial<Pick<ModelProfile, "dialect" | "embedding" | "hasResponsesApi">>,
  req: NormalizedRequest,
): ModelRequest {
  if (caps.embedding !== undefined) {
    throw new GatewayError(
      "unsupported_feature",
      `${caps.model} is an embedding model: it embeds (POST …/v1/embeddings, :embedContent) and generates nothing.`,
      { details: { model: caps.model, feature: "generation" } },
    );
  }
  // The caller spoke this model's provider's dialect: its body goes as it came (pass-through).
  const own = req.dialectBody !== undefined && speaks(caps, req.dialectBody);
  checkOnly(caps, req.only);
  if (!caps.supportsJsonMode && req.asks.json !== undefined) {
    const advice = req.asks.json.feature === "responseMimeType"
      ? "omit it and ask for JSON in the prompt."
      : "ask for JSON in the prompt instead.";
    throw unsupported(caps.model, req.asks.json, advice);
  }
  if (!caps.supportsTools && req.asks.tools !== undefined) {
    throw unsupported(caps.model, req.asks.tools, "use a model that supports function calling.");
  }
  if (caps.supportsImages === false && req.imageTokens > 0) {
    throw unsupported(caps.model, IMAGES, "send text only, or use a model that takes images.");
  }
  checkRefusedOptions(caps, req);

  const fitted: ModelRequest = {
    model: caps.model,
    messages: req.messages,
    options: req.options,
    ...(req.tools === undefined || req.tools.length === 0 ? {} : { tools: req.tools }),
    ...(req.toolChoice === undefined ? {} : { toolChoice: req.toolChoice }),
    ...(req.dialectExtras === undefined ? {} : { dialectExtras: req.dialectExtras }),
    ...(own ? { dialectBody: { ...req.dialectBody! } } : {}),
  };
  if (req.system === undefined) return fitted;
  if (caps.supportsSystemInstruction) return { ...fitted, system: req.system };
  return { ...fitted, messages: foldSystem(req.system, req.messages) };
}

/** A generation fitted to each model of its chain (model-chain.ts's `fit`). */
export function fitGeneration(req: NormalizedRequest): (caps: ModelProfile) => ModelRequest {
  return (caps) => adaptToModel(caps, req);
}

/** Puts the system text before the first user turn's text (a new user turn if a model turn leads). */
export function foldSystem(system: string, messages: readonly HubMessage[]): HubMessage[] {
  const first = messages[0];
  if (first === undefined || first.role !== "user") {
    return [{ role: "user", parts: [{ type: "text", text: system }] }, ...messages];
  }
  const [head, ...rest] = first.parts;
  // Merged into one text part with a blank line, as chat templates render consecutive parts unseparated.
  const parts = head?.type === "text"
    ? [{ ...head, text: `${system}\n\n${head.text}` }, ...rest]
    : [{ type: "text" as const, text: `${system}\n\n` }, ...first.parts];
  return [{ role: "user", parts }, ...messages.slice(1)];
}
