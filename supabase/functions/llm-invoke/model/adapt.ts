// Fits a normalized request to what the model can do, in the hub's words. Capabilities come from the
// model's row in google_ai_model_limits, so a new model with the same quirks is a row, not a code change.
// A model without system instructions (Gemma on the Gemini API rejects them: "Developer instruction is
// not enabled") gets the system prompt folded into the first user turn; JSON output, tools and images
// a model lacks are refused with a clear 400 naming the caller's field instead of the provider's
// opaque one, and so is what only another dialect's models honour (the request's `only`) and an option
// the model refuses to be set (refused-options.ts: a thinking budget, sampling, on Claude 5.x).
import { GatewayError } from "../../_shared/errors.ts";
import { MAX_ISSUES } from "../../_shared/validation.ts";
import { checkRefusedOptions } from "./refused-options.ts";
import type { HubMessage } from "../../_shared/upstream/hub.ts";
import type { Ask, ModelCapabilities, ModelProfile, ModelRequest, NormalizedRequest } from "../contract.ts";

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

export function adaptToModel(
  caps: ModelCapabilities & Partial<Pick<ModelProfile, "dialect" | "embedding" | "hasResponsesApi">>,
  req: NormalizedRequest,
): ModelRequest {
  if (req.embed !== undefined || caps.embedding !== undefined) checkEmbedding(caps, req);
  // The caller spoke this model's provider's dialect: its body goes as it came (pass-through).
  const own = req.dialectBody !== undefined && speaks(caps, req.dialectBody);
  const only = req.only !== undefined && !speaks(caps, req.only) ? req.only.fields : [];
  if (only.length > 0) {
    // The fields are the caller's keys: at most MAX_ISSUES named, as a validation refusal names.
    const listed = only.slice(0, MAX_ISSUES);
    const more = only.length > MAX_ISSUES ? `; and ${only.length - MAX_ISSUES} more` : "";
    throw new GatewayError(
      "unsupported_feature",
      `Not supported by ${caps.model}: ${listed.map((f) => `${f.field} (${f.why})`).join("; ")}${more}.`,
      { details: { model: caps.model, field: only[0]!.field, features: listed.map((f) => f.field) } },
    );
  }
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
    ...(req.embed === undefined ? {} : { embed: req.embed }),
  };
  if (req.system === undefined) return fitted;
  if (caps.supportsSystemInstruction) return { ...fitted, system: req.system };
  return { ...fitted, messages: foldSystem(req.system, req.messages) };
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

/**
 * An embedding call goes only to a model that embeds, and a generation only to one that generates; a
 * vector size the model cannot give and more inputs than
 * its provider takes in one request (where it counts the batch as one request: else the gateway sends
 * each input alone) are refused by name.
 */
function checkEmbedding(
  caps: ModelCapabilities & Partial<Pick<ModelProfile, "dialect" | "embedding">>,
  req: NormalizedRequest,
): void {
  const traits = caps.embedding;
  if (req.embed === undefined) {
    throw new GatewayError(
      "unsupported_feature",
      `${caps.model} is an embedding model: it embeds (POST …/v1/embeddings, :embedContent) and generates nothing.`,
      { details: { model: caps.model, feature: "generation" } },
    );
  }
  if (traits === undefined) {
    throw new GatewayError(
      "unsupported_feature",
      `${caps.model} does not embed; use an embedding model (GET …/v1/models lists them).`,
      { details: { model: caps.model, feature: "embeddings" } },
    );
  }
  const asked = req.embed;
  if (asked.dimensions !== undefined && (asked.dimensions > traits.dimensions ||
    (!traits.shortenable && asked.dimensions !== traits.dimensions))) {
    throw new GatewayError(
      "invalid_request",
      `${caps.model} gives vectors of ${traits.dimensions} dimensions${
        traits.shortenable ? " or fewer" : " only"
      }; ${asked.dimensions} were asked.`,
      { details: { model: caps.model, field: "dimensions" } },
    );
  }
  // One request is one call to the provider, and one attempt row (a provider that counts each input books
  // them all at once: attempt/embedding.ts), so a batch is at most what the provider takes in one call.
  if (asked.inputs.length > traits.maxBatch) {
    throw new GatewayError(
      "invalid_request",
      `${caps.model}'s provider takes at most ${traits.maxBatch} inputs in one request; ${asked.inputs.length} were sent.`,
      { details: { model: caps.model, field: "input", max_batch: traits.maxBatch, inputs: asked.inputs.length } },
    );
  }
}
