// Fits a normalized request to what the model can do. Capabilities come from the model's row in
// google_ai_model_limits, so a new model with the same quirks is a row, not a code change.
// Gemma on the Gemini API rejects systemInstruction ("Developer instruction is not enabled") and is
// reported to lack JSON mode: we fold the system prompt into the first user turn and refuse JSON
// mode with a clear 400 instead of Google's opaque one.
import { GatewayError } from "../_shared/errors.ts";
import type { Content, GoogleRequest } from "../_shared/google/types.ts";
import type { NormalizedRequest } from "./request.ts";

export type { GoogleRequest } from "../_shared/google/types.ts";

export interface ModelCapabilities {
  /** Canonical id sent to Google (an alias such as gemma-3-27b resolves to gemma-3-27b-it). */
  model: string;
  supportsSystemInstruction: boolean;
  supportsJsonMode: boolean;
}

const PLAIN_TEXT = "text/plain";

export function adaptToModel(caps: ModelCapabilities, req: NormalizedRequest): GoogleRequest {
  const mime = req.generationConfig.responseMimeType;
  if (mime !== undefined && mime !== PLAIN_TEXT && !caps.supportsJsonMode) {
    throw new GatewayError(
      "unsupported_feature",
      `${caps.model} does not support responseMimeType ${mime}; use text/plain or omit it ` +
        "and ask for JSON in the prompt.",
      { details: { model: caps.model, feature: "responseMimeType" } },
    );
  }

  if (req.system === undefined) {
    return { model: caps.model, contents: req.contents, generationConfig: req.generationConfig };
  }
  if (caps.supportsSystemInstruction) {
    return {
      model: caps.model,
      contents: req.contents,
      systemInstruction: req.system,
      generationConfig: req.generationConfig,
    };
  }
  return {
    model: caps.model,
    contents: foldSystem(req.system, req.contents),
    generationConfig: req.generationConfig,
  };
}

/** Puts the system text before the first user turn's text (a new user turn if a model turn leads). */
export function foldSystem(system: string, contents: readonly Content[]): Content[] {
  const first = contents[0];
  if (first === undefined || first.role !== "user") {
    return [{ role: "user", parts: [{ text: system }] }, ...contents];
  }
  const [head, ...rest] = first.parts;
  // Merged into one text part with a blank line, as chat templates render consecutive parts unseparated.
  const parts = head === undefined ? [{ text: system }] : [{ text: `${system}\n\n${head.text}` }, ...rest];
  return [{ role: "user", parts }, ...contents.slice(1)];
}
