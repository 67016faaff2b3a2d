// Google's GenerateContentRequest (the body of :generateContent and :streamGenerateContent, and the
// inner body of :countTokens) → the request the gateway runs. Fields are checked as Google's API would
// check them, then by the same schemas as the native route, so both routes accept and refuse alike.
import { z } from "zod";
import { GatewayError } from "../../../_shared/errors.ts";
import { invalidRequest } from "../../../_shared/validation.ts";
import { imageTokensOf } from "../../model/images.ts";
import { checkContents } from "./parts.ts";
import { joinText, MAX_PARTS, repeatedInChain } from "../shared/request-rules.ts";
import { generationConfigSchema, toolsAndSafetySchema } from "./schemas.ts";
import type { NormalizedRequest, RequestLimits, ServiceTier } from "../../contract.ts";
import { type GeminiInHub, geminiInHub } from "./hub.ts";
import { callOptionsFromHeaders } from "../shared/call-options.ts";
import { bad, camelKeys, unknownField } from "./fields.ts";
import { isObject } from "../../../_shared/json.ts";
import { namedSafetySettings } from "./safety-enums.ts";

const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** The fields of Google's GenerateContentRequest and what the gateway does with each. */
const READ = new Set(["contents", "systemInstruction", "generationConfig", "tools", "toolConfig", "safetySettings"]);
/** Settings of Google's own billing and logging: they mean nothing once a pool of projects serves. */
const IGNORED = new Set(["labels", "store"]);
/**
 * serviceTier, as @google/genai writes GenerateContentConfig.serviceTier: honoured within the caller's
 * class like the OpenAI surface's service_tier (service-tiers.ts); "unspecified" leaves it to the class.
 */
const SERVICE_TIER_VALUES: Record<string, ServiceTier | null> = {
  unspecified: null,
  service_tier_unspecified: null,
  flex: "flex",
  standard: "standard",
  priority: "priority",
};

export interface GenerateBody extends GeminiInHub {
  system?: string;
  imageTokens: number;
  /** The tier the caller asked for (absent: its class's). */
  serviceTier?: ServiceTier;
}

/** The path's model, as Google's routes name it (`models/` is optional), checked like the native `model`. */
export function pathModel(model: string | undefined): string {
  const id = model?.replace(/^models\//, "");
  if (id === undefined || !MODEL_NAME.test(id)) {
    throw new GatewayError("invalid_request", "The path must name a model: …/v1beta/models/{model}:generateContent.", {
      details: { field: "model" },
    });
  }
  return id;
}

function systemText(raw: unknown, field: string): string | undefined {
  if (typeof raw === "string") return joinText([raw]);
  if (!isObject(raw) || !Array.isArray(raw.parts)) {
    throw bad(field, `${field} must be a string or {parts: [{text}]}.`);
  }
  for (const key of Object.keys(raw)) if (key !== "parts" && key !== "role") throw unknownField(`${field}.`, key);
  const texts = raw.parts.map((part, i) => {
    if (!isObject(part) || typeof part.text !== "string") {
      throw new GatewayError(
        "unsupported_feature",
        `${field}.parts[${i}]: the gateway takes text parts only in a system instruction; put images and other parts in contents.`,
        { details: { field: `${field}.parts[${i}]`, feature: "systemInstruction.parts" } },
      );
    }
    return part.text;
  });
  return joinText(texts);
}

/**
 * A GenerateContentRequest body (a countTokens request's inner one too, `field` naming where it is):
 * its fields checked as Google's API would, and by the same rules as the native route.
 */
export function parseGenerateBody(raw: unknown, model: string, field = ""): GenerateBody {
  const where = field === "" ? "" : `${field}.`;
  if (!isObject(raw)) {
    if (field === "") throw new GatewayError("invalid_json", "The body must be a JSON object.");
    throw bad(field, `${field} must be an object.`);
  }
  const body = camelKeys(raw, where);
  for (const key of Object.keys(body)) {
    if (key === "cachedContent") {
      throw new GatewayError(
        "unsupported_feature",
        `${where}cachedContent names a cache held by one Google project; the gateway spreads requests over several ` +
          "projects, so send the content itself.",
        { details: { field: `${where}cachedContent`, feature: "cachedContent" } },
      );
    }
    if (key === "model") {
      // Google's SDKs may repeat the path's model in the body; another model there is a mistake.
      if (typeof body.model !== "string" || body.model.replace(/^models\//, "") !== model) {
        throw bad(`${where}model`, `${where}model must be the path's model (models/${model}) or left out.`);
      }
      continue;
    }
    if (!READ.has(key) && !IGNORED.has(key) && key !== "serviceTier") throw unknownField(where, key);
  }
  const serviceTier = serviceTierOf(body.serviceTier, `${where}serviceTier`);

  if (body.contents === undefined) throw new GatewayError("empty_input", `${where}contents is required.`);
  if (!Array.isArray(body.contents)) throw bad(`${where}contents`, `${where}contents must be a list of turns.`);
  // Counted before any part is read, so an oversized request costs no image decoding.
  const parts = body.contents.reduce<number>(
    (n, c) => n + (isObject(c) && Array.isArray(c.parts) ? c.parts.length : 1),
    0,
  );
  if (parts > MAX_PARTS) {
    throw bad(`${where}contents`, `${where}contents holds ${parts} parts; the limit is ${MAX_PARTS} over all turns.`);
  }

  const generationConfig = isObject(body.generationConfig)
    ? camelKeys(body.generationConfig, `${where}generationConfig.`)
    : body.generationConfig;
  if (isObject(generationConfig) && isObject(generationConfig.thinkingConfig)) {
    generationConfig.thinkingConfig = camelKeys(
      generationConfig.thinkingConfig,
      `${where}generationConfig.thinkingConfig.`,
    );
  }
  const checked = checkedFields({
    generationConfig,
    tools: body.tools,
    toolConfig: body.toolConfig,
    safetySettings: namedSafetySettings(body.safetySettings),
  }, field);

  const system = body.systemInstruction === undefined
    ? undefined
    : systemText(body.systemInstruction, `${where}systemInstruction`);
  const { contents, images } = checkContents(body.contents, `${where}contents`);
  return {
    ...geminiInHub({ contents, ...checked }, `${where}contents`, where),
    ...(system === undefined ? {} : { system }),
    imageTokens: imageTokensOf(images),
    ...(serviceTier === null ? {} : { serviceTier }),
  };
}

function serviceTierOf(raw: unknown, field: string): ServiceTier | null {
  if (raw === undefined || raw === null) return null;
  const tier = typeof raw === "string" ? SERVICE_TIER_VALUES[raw.toLowerCase()] : undefined;
  if (tier === undefined) throw bad(field, `${field} must be flex, standard, priority or unspecified.`);
  return tier;
}

const fieldsSchema = z.object({ generationConfig: generationConfigSchema.optional(), ...toolsAndSafetySchema });

/** generationConfig, tools, toolConfig, safetySettings by the native route's schemas; paths name the field. */
function checkedFields(fields: Record<string, unknown>, field: string): z.infer<typeof fieldsSchema> {
  if (field === "") {
    const parsed = fieldsSchema.safeParse(fields);
    if (!parsed.success) throw invalidRequest(parsed.error);
    return parsed.data;
  }
  const parsed = z.object({ [field]: fieldsSchema }).safeParse({ [field]: fields });
  if (!parsed.success) throw invalidRequest(parsed.error);
  return parsed.data[field] as z.infer<typeof fieldsSchema>;
}

/** Fallbacks (x-eve-fallback-models) name each model once, the path's model included. */
function checkFallbacks(model: string, fallbacks: readonly string[] | undefined): void {
  const repeated = repeatedInChain(model, fallbacks);
  if (repeated === undefined) return;
  throw new GatewayError(
    "invalid_request",
    `x-eve-fallback-models: ${repeated.name} is already in the chain (the path's model, then the fallbacks, each once).`,
    { details: { header: "x-eve-fallback-models", model: repeated.name } },
  );
}

/** The request the gateway runs: the parsed body plus the call options of the x-eve-* headers. */
export function normalized(
  model: string,
  body: GenerateBody,
  headers: Headers,
  limits: RequestLimits,
  stream: boolean,
): NormalizedRequest {
  const options = callOptionsFromHeaders(headers, limits);
  checkFallbacks(model, options.fallbackModels);
  return {
    model,
    ...options, // mode, wait, and the request id, priority and fallbacks when given
    ...body,
    stream,
    metadata: {},
  };
}
