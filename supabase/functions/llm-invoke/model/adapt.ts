// Fits a normalized request to what the model can do. Capabilities come from the model's row in
// google_ai_model_limits, so a new model with the same quirks is a row, not a code change.
// Gemma on the Gemini API rejects systemInstruction ("Developer instruction is not enabled") and
// lacks JSON mode and function calling: we fold the system prompt into the first user turn and
// refuse JSON mode and tools with a clear 400 naming the feature instead of Google's opaque one.
// Everything a model can take is forwarded unchanged.
import { GatewayError } from "../../_shared/errors.ts";
import type { Content, ModelCapabilities, ModelProfile, ModelRequest, NormalizedRequest } from "../contract.ts";

/** `feature` is the field's name (details.feature, stable); `what` may say more of it for people. */
function unsupported(model: string, feature: string, advice: string, what = feature): GatewayError {
  return new GatewayError("unsupported_feature", `${model} does not support ${what}; ${advice}`, {
    details: { model, feature },
  });
}

const PLAIN_TEXT = "text/plain";

export function adaptToModel(
  caps: ModelCapabilities & Partial<Pick<ModelProfile, "dialect">>,
  req: NormalizedRequest,
): ModelRequest {
  // The caller spoke this model's provider's dialect: its body goes as it came (pass-through).
  const own = req.dialectBody !== undefined &&
    req.dialectBody.dialect === caps.dialect;
  const only = req.dialectBody?.only ?? [];
  if (!own && only.length > 0) {
    throw new GatewayError(
      "unsupported_feature",
      `Not supported by ${caps.model}: ${only.map((f) => `${f.field} (${f.why})`).join("; ")}.`,
      { details: { model: caps.model, field: only[0]!.field, features: only.map((f) => f.field) } },
    );
  }
  const config = req.generationConfig;
  if (!caps.supportsJsonMode) {
    const mime = config.responseMimeType;
    if (mime !== undefined && mime !== PLAIN_TEXT) {
      throw unsupported(
        caps.model,
        "responseMimeType",
        "use text/plain or omit it and ask for JSON in the prompt.",
        `responseMimeType ${mime}`,
      );
    }
    for (const feature of ["responseSchema", "responseJsonSchema"] as const) {
      if (config[feature] !== undefined) throw unsupported(caps.model, feature, "ask for JSON in the prompt instead.");
    }
  }
  if (!caps.supportsTools) {
    for (const feature of ["tools", "toolConfig"] as const) {
      if (req.extras[feature] !== undefined) {
        throw unsupported(
          caps.model,
          feature,
          "use a model that supports function calling.",
          `${feature} (function calling)`,
        );
      }
    }
  }

  if (caps.supportsImages === false && req.imageTokens > 0) {
    throw unsupported(caps.model, "images", "send text only, or use a model that takes images.");
  }

  const base = {
    model: caps.model,
    generationConfig: config,
    ...req.extras,
    ...(own ? { dialectBody: { dialect: req.dialectBody!.dialect, body: req.dialectBody!.body } } : {}),
  };
  if (req.system === undefined) return { ...base, contents: req.contents };
  if (caps.supportsSystemInstruction) return { ...base, contents: req.contents, systemInstruction: req.system };
  return { ...base, contents: foldSystem(req.system, req.contents) };
}

/** Puts the system text before the first user turn's text (a new user turn if a model turn leads). */
export function foldSystem(system: string, contents: readonly Content[]): Content[] {
  const first = contents[0];
  if (first === undefined || first.role !== "user") {
    return [{ role: "user", parts: [{ text: system }] }, ...contents];
  }
  const [head, ...rest] = first.parts;
  // Merged into one text part with a blank line, as chat templates render consecutive parts unseparated.
  const parts = typeof head?.text === "string"
    ? [{ ...head, text: `${system}\n\n${head.text}` }, ...rest]
    : [{ text: `${system}\n\n` }, ...first.parts];
  return [{ role: "user", parts }, ...contents.slice(1)];
}
