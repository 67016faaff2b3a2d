// The llm-invoke request: its zod schema, and its normalization into the hub's words (messages plus an
// optional system text, whatever input form the caller used: prompt, chat messages, native contents).
// Its contents, generationConfig, tools, toolConfig and safetySettings are Gemini's (the bot's contract),
// said in the hub's words by Gemini's route's translation (../gemini/hub.ts).
import { z } from "zod";
import { GatewayError } from "../../../_shared/errors.ts";
import { invalidRequest } from "../../../_shared/validation.ts";
import { camelGenerationConfig } from "../gemini/json-keys.ts";
import { checkContents, type Content } from "../gemini/parts.ts";
import { geminiInHub } from "../gemini/hub.ts";
import { generationConfigSchema, toolsAndSafetySchema } from "../gemini/schemas.ts";
import { imageTokensOf } from "../../model/images.ts";
import { checkMetadata, joinText, MAX_FALLBACK_MODELS, MAX_PARTS, repeatedInChain, waitFor } from "../shared/request-rules.ts";
import {
  DEFAULT_REQUEST_LIMITS,
  type NormalizedRequest,
  PRIORITY_CLASSES,
  type RequestLimits,
} from "../../contract.ts";

const MAX_TURNS = 1000;
const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

const messageSchema = z.strictObject({
  role: z.enum(["system", "user", "assistant"]),
  content: z.string(),
});


// Turns are checked by ../gemini/parts.ts (the rules of Google's route), after the shape here.
const contentSchema = z.looseObject({ parts: z.array(z.unknown()).max(MAX_PARTS) });

const modelName = z.string().transform((m) => m.replace(/^models\//, "")).pipe(
  z.string().regex(MODEL_NAME, "must be a model id such as gemma-3-27b-it"),
);

export const invokeRequestSchema = z.strictObject({
  model: modelName,
  fallback_models: z.array(modelName).max(MAX_FALLBACK_MODELS, `at most ${MAX_FALLBACK_MODELS} fallback models`)
    .optional(),
  prompt: z.string().optional(),
  messages: z.array(messageSchema).max(MAX_TURNS).optional(),
  contents: z.array(contentSchema).max(MAX_TURNS).optional(),
  system: z.string().optional(),
  generationConfig: generationConfigSchema.optional(),
  mode: z.enum(["WAIT", "NO_WAIT"]).default("WAIT"),
  max_wait_ms: z.number().int().min(0).optional(),
  request_id: z.string().regex(REQUEST_ID, "must be 1-128 characters of A-Z a-z 0-9 . _ : -")
    .optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
  include_candidates: z.boolean().default(false),
  priority: z.enum(PRIORITY_CLASSES).optional(),
  stream: z.boolean().default(false),
  ...toolsAndSafetySchema,
});

export type InvokeRequest = z.infer<typeof invokeRequestSchema>;

/** The native request as the gateway runs it, and what only the native answer reads back. */
export interface NativeRequest extends NormalizedRequest {
  /** The answer carries its candidates in Google's words (the bot's contract). */
  includeCandidates: boolean;
}

/** Validates a parsed JSON body and normalizes it; throws GatewayError with a specific code. */
export function parseInvokeRequest(
  body: unknown,
  limits: RequestLimits = DEFAULT_REQUEST_LIMITS,
): NativeRequest {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new GatewayError("invalid_json", "The body must be a JSON object.");
  }
  // generationConfig in Google's camelCase, so checks and caps see `max_output_tokens` as `maxOutputTokens`.
  const generationConfig = (body as Record<string, unknown>).generationConfig;
  const parsed = invokeRequestSchema.safeParse(
    generationConfig === undefined ? body : { ...body, generationConfig: camelGenerationConfig(generationConfig) },
  );
  if (!parsed.success) throw invalidRequest(parsed.error);
  const req = parsed.data;

  checkFallbacks(req.model, req.fallback_models);
  const { contents, systemFromMessages, imageTokens } = toContents(req);
  const system = joinText([req.system, systemFromMessages]);

  if (req.metadata !== undefined) checkMetadata(req.metadata, limits);

  // Its Gemini fields (generationConfig, tools, toolConfig, safetySettings) as Google's route reads them.
  const hub = geminiInHub({ ...req, contents });
  return {
    model: req.model,
    ...(req.fallback_models === undefined ? {} : { fallbackModels: req.fallback_models }),
    ...hub,
    ...(system === undefined ? {} : { system }),
    imageTokens,
    stream: req.stream,
    mode: req.mode,
    maxWaitMs: waitFor(req.mode, req.max_wait_ms, limits),
    ...(req.request_id === undefined ? {} : { requestId: req.request_id }),
    metadata: req.metadata ?? {},
    includeCandidates: req.include_candidates,
    ...(req.priority === undefined ? {} : { priority: req.priority }),
  };
}

/** A chain names each model once (aliases of one model are told apart later, by the model rows). */
function checkFallbacks(model: string, fallbacks: readonly string[] | undefined): void {
  const repeated = repeatedInChain(model, fallbacks);
  if (repeated === undefined) return;
  throw new GatewayError(
    "invalid_request",
    `fallback_models[${repeated.index}]: ${repeated.name} is already in the chain (model, then fallback_models, each once).`,
    { details: { field: "fallback_models", model: repeated.name } },
  );
}

function toContents(req: InvokeRequest): { contents: Content[]; systemFromMessages?: string; imageTokens: number } {
  const given = [req.prompt, req.messages, req.contents].filter((x) => x !== undefined).length;
  if (given === 0) {
    throw new GatewayError("empty_input", "Give the input as one of: prompt, messages, contents.");
  }
  if (given > 1) {
    throw new GatewayError(
      "invalid_request",
      "Give exactly one of prompt, messages, contents (not several).",
    );
  }

  if (req.prompt !== undefined) {
    if (req.prompt.trim() === "") throw new GatewayError("empty_input", "prompt is empty.");
    return { contents: [{ role: "user", parts: [{ text: req.prompt }] }], imageTokens: 0 };
  }

  if (req.messages !== undefined) {
    const system: string[] = [];
    const contents: Content[] = [];
    req.messages.forEach((m, i) => {
      if (m.role === "system") {
        system.push(m.content);
        return;
      }
      if (m.content.trim() === "") {
        throw new GatewayError("empty_input", `messages[${i}].content is empty.`);
      }
      contents.push({ role: m.role === "assistant" ? "model" : "user", parts: [{ text: m.content }] });
    });
    if (contents.length === 0) {
      throw new GatewayError("empty_input", "messages has no user or assistant message.");
    }
    return { contents, systemFromMessages: joinText(system), imageTokens: 0 };
  }

  const checked = checkContents(req.contents ?? []);
  return { contents: checked.contents, imageTokens: imageTokensOf(checked.images) };
}
