// Google's own REST routes (v1beta models/{model}:generateContent, :streamGenerateContent, :countTokens,
// GET models and models/{model}), so code written for Google's SDKs works by pointing its base URL at
// the gateway. Bodies come in Google's GenerateContentRequest (camelCase or snake_case, as Google's
// REST accepts both) and answers, streams and errors go out exactly in Google's shape. See docs/gemini.md.
import { z } from "zod";
import type { ErrorAnswer, JsonAnswer, StreamAnswer } from "../../_shared/envelope.ts";
import { GatewayError } from "../../_shared/errors.ts";
import type { GoogleResponse } from "../../_shared/google/types.ts";
import { boundedName, invalidRequest } from "../../_shared/validation.ts";
import { googleResponseOf, type InvokeResult, type InvokeStream, isStream } from "../context.ts";
import { checkContents } from "../parts.ts";
import {
  extrasOf,
  extrasSchema,
  type GenerationConfig,
  generationConfigSchema,
  joinText,
  MAX_PARTS,
  type NormalizedRequest,
  type RequestLimits,
} from "../request.ts";
import type { ModelEntry } from "../store.ts";
import { callOptionsFromHeaders } from "./call-options.ts";
import { SSE_HEADERS, sseBody } from "./sse.ts";
import type { GenerateSurface, ParseInput, SurfaceContext } from "./surface.ts";

const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function bad(field: string, message: string): GatewayError {
  return new GatewayError("invalid_request", message, { details: { field } });
}

/** Google's wording for a field its API does not have (it refuses them too, rather than ignoring them). */
function unknownField(where: string, key: string): GatewayError {
  const name = boundedName(key);
  return bad(
    `${where}${name}`,
    `Invalid JSON payload received. Unknown name "${name}"${
      where === "" ? "" : ` at '${where.slice(0, -1)}'`
    }: Cannot find field.`,
  );
}

// ---- the request ---------------------------------------------------------------------------------

/** `max_output_tokens` → `maxOutputTokens`; both spellings of one field at once is ambiguous: refused. */
function camelKeys(raw: Record<string, unknown>, where: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    const name = key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
    if (Object.hasOwn(out, name)) {
      throw bad(
        `${where}${name}`,
        `${where}${boundedName(name)} is given twice (camelCase and snake_case); give it once.`,
      );
    }
    // Defined, not assigned: a "__proto__" key stays a key (and is refused as unknown), not a prototype.
    Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

// Google's Python SDK over REST (google.generativeai, transport="rest") writes enums as numbers.
// The safety settings are the only enums the gateway reads; the names are those of Google's proto.
const HARM_CATEGORIES = [
  "HARM_CATEGORY_UNSPECIFIED",
  "HARM_CATEGORY_DEROGATORY",
  "HARM_CATEGORY_TOXICITY",
  "HARM_CATEGORY_VIOLENCE",
  "HARM_CATEGORY_SEXUAL",
  "HARM_CATEGORY_MEDICAL",
  "HARM_CATEGORY_DANGEROUS",
  "HARM_CATEGORY_HARASSMENT",
  "HARM_CATEGORY_HATE_SPEECH",
  "HARM_CATEGORY_SEXUALLY_EXPLICIT",
  "HARM_CATEGORY_DANGEROUS_CONTENT",
  "HARM_CATEGORY_CIVIC_INTEGRITY",
];
const HARM_THRESHOLDS = [
  "HARM_BLOCK_THRESHOLD_UNSPECIFIED",
  "BLOCK_LOW_AND_ABOVE",
  "BLOCK_MEDIUM_AND_ABOVE",
  "BLOCK_ONLY_HIGH",
  "BLOCK_NONE",
  "OFF",
];

function enumName(value: unknown, names: readonly string[]): unknown {
  return typeof value === "number" && Number.isInteger(value) && names[value] !== undefined ? names[value] : value;
}

function namedSafetySettings(raw: unknown): unknown {
  if (!Array.isArray(raw)) return raw;
  return raw.map((s) =>
    isObject(s)
      ? { ...s, category: enumName(s.category, HARM_CATEGORIES), threshold: enumName(s.threshold, HARM_THRESHOLDS) }
      : s
  );
}

/** The fields of Google's GenerateContentRequest and what the gateway does with each. */
const READ = new Set(["contents", "systemInstruction", "generationConfig", "tools", "toolConfig", "safetySettings"]);
/** Settings of Google's own billing and logging: they mean nothing once a pool of projects serves. */
const IGNORED = new Set(["labels", "store", "serviceTier"]);

interface GenerateBody {
  contents: NormalizedRequest["contents"];
  system?: string;
  generationConfig: GenerationConfig;
  extras: NormalizedRequest["extras"];
  imageTokens: number;
}

/** The path's model, as Google's routes name it (`models/` is optional), checked like the native `model`. */
function pathModel(model: string | undefined): string {
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
function parseGenerateBody(raw: unknown, model: string, field = ""): GenerateBody {
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
    if (!READ.has(key) && !IGNORED.has(key)) throw unknownField(where, key);
  }

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
    contents,
    ...(system === undefined ? {} : { system }),
    generationConfig: (checked.generationConfig ?? {}) as GenerationConfig,
    extras: extrasOf(checked),
    imageTokens: images.reduce((sum, image) => sum + image.tokens, 0),
  };
}

const fieldsSchema = z.object({ generationConfig: generationConfigSchema.optional(), ...extrasSchema });

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
  if (fallbacks === undefined) return;
  const seen = new Set([model]);
  for (const name of fallbacks) {
    if (seen.has(name)) {
      throw new GatewayError(
        "invalid_request",
        `x-eve-fallback-models: ${name} is already in the chain (the path's model, then the fallbacks, each once).`,
        { details: { header: "x-eve-fallback-models", model: name } },
      );
    }
    seen.add(name);
  }
}

function normalized(
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
    ...(options.fallbackModels === undefined ? {} : { fallbackModels: options.fallbackModels }),
    contents: body.contents,
    ...(body.system === undefined ? {} : { system: body.system }),
    generationConfig: body.generationConfig,
    extras: body.extras,
    imageTokens: body.imageTokens,
    stream,
    mode: options.mode,
    maxWaitMs: options.maxWaitMs,
    ...(options.requestId === undefined ? {} : { requestId: options.requestId }),
    metadata: {},
    // Google's shape is built from Google's answer, candidates included (the native body is not sent here).
    includeCandidates: true,
    ...(options.priority === undefined ? {} : { priority: options.priority }),
  };
}

// ---- errors --------------------------------------------------------------------------------------

/**
 * The canonical status Google's errors name for each HTTP status the gateway answers with. 405 has no
 * canonical twin: UNIMPLEMENTED ("not supported by this service") says what it means; 413 and 415 are
 * what Google itself answers as INVALID_ARGUMENT. A status missing here would read UNKNOWN (a test
 * walks ERROR_STATUS so that cannot happen unnoticed).
 */
export const GOOGLE_STATUS: Readonly<Record<number, string>> = {
  400: "INVALID_ARGUMENT",
  401: "UNAUTHENTICATED",
  403: "PERMISSION_DENIED",
  404: "NOT_FOUND",
  405: "UNIMPLEMENTED",
  409: "ABORTED",
  413: "INVALID_ARGUMENT",
  415: "INVALID_ARGUMENT",
  429: "RESOURCE_EXHAUSTED",
  499: "CANCELLED",
  500: "INTERNAL",
  502: "UNAVAILABLE",
  503: "UNAVAILABLE",
  504: "DEADLINE_EXCEEDED",
};

/** A protobuf Duration in JSON, to the millisecond: 3500 → "3.5s", 61000 → "61s". */
export function retryDelay(ms: number): string {
  const millis = Math.max(0, Math.round(ms));
  const fraction = millis % 1000;
  const seconds = (millis - fraction) / 1000;
  return fraction === 0 ? `${seconds}s` : `${seconds}.${String(fraction).padStart(3, "0").replace(/0+$/, "")}s`;
}

export interface GoogleErrorBody {
  error: { code: number; message: string; status: string; details: Array<Record<string, unknown>> };
}

/**
 * Google's error shape. ErrorInfo carries the gateway's stable code (callers branch on it, as on the
 * native route's `error.code`); RetryInfo carries the gateway's exact wait where it knows one (429, and
 * 409 of a request being served), finer than the whole seconds of Retry-After.
 */
export function googleError(error: GatewayError, requestId: string): GoogleErrorBody {
  const limit = error.extra?.limit;
  const details: Array<Record<string, unknown>> = [{
    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
    reason: error.code.toUpperCase(),
    domain: "eve-llm-gateway",
    // ErrorInfo.metadata is a map of strings.
    metadata: { code: error.code, request_id: requestId, ...(typeof limit === "string" ? { limit } : {}) },
  }];
  const wait = error.extra?.retry_after_ms;
  if (typeof wait === "number" && Number.isFinite(wait)) {
    details.push({ "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: retryDelay(wait) });
  }
  const field = error.details?.field;
  if (typeof field === "string") {
    details.push({
      "@type": "type.googleapis.com/google.rpc.BadRequest",
      fieldViolations: [{ field, description: error.message }],
    });
  }
  return {
    error: { code: error.status, message: error.message, status: GOOGLE_STATUS[error.status] ?? "UNKNOWN", details },
  };
}

// ---- streams -------------------------------------------------------------------------------------

// Google frames its server-sent events with CRLF ("data: {...}\r\n\r\n"); sseFrame writes "\n\n".
// Both are valid SSE, but a client written against Google's bytes may split on CRLF only.
const frame = (data: unknown) => `data: ${JSON.stringify(data)}\r\n\r\n`;

/** Google's chunks of an answer: a live stream's as they come, a replay's whole answer as one chunk. */
async function* googleChunks(answer: InvokeStream | InvokeResult): AsyncGenerator<GoogleResponse, void, undefined> {
  if (isStream(answer)) yield* answer.chunks;
  else yield googleResponseOf(answer);
}

/**
 * The items of a stream in Google's shape; an error after the first chunk (GatewayError) becomes a
 * last item in Google's error shape. Stopping early (the caller went away) returns the chunks'
 * iterator, which aborts the call to Google.
 */
async function* streamItems(
  answer: InvokeStream | InvokeResult,
  requestId: string,
): AsyncGenerator<unknown, void, undefined> {
  try {
    yield* googleChunks(answer);
  } catch (error) {
    // Anything else is a fault of the gateway: it ends the stream and is reported by the runtime.
    if (!(error instanceof GatewayError)) throw error;
    yield googleError(error, requestId);
  }
}

async function* sseFrames(
  answer: InvokeStream | InvokeResult,
  requestId: string,
): AsyncGenerator<string, void, undefined> {
  for await (const item of streamItems(answer, requestId)) yield frame(item);
}

/**
 * streamGenerateContent without `alt=sse`: Google answers a JSON array written element by element. It
 * is what Google's GAPIC REST clients read (google.generativeai with transport="rest" asks for
 * `$alt=json;enum-encoding=int`); the route picks this or the SSE form by the query.
 */
export function geminiJsonArrayStream(answer: InvokeStream | InvokeResult, ctx: SurfaceContext): StreamAnswer {
  async function* pieces(): AsyncGenerator<string, void, undefined> {
    let first = true;
    for await (const item of streamItems(answer, ctx.requestId)) {
      yield `${first ? "[" : ",\r\n"}${JSON.stringify(item)}`;
      first = false;
    }
    yield first ? "[]" : "]";
  }
  return {
    stream: sseBody(pieces()),
    headers: {
      "content-type": "application/json; charset=utf-8",
      "cache-control": "no-cache",
      "x-accel-buffering": "no",
    },
  };
}

// ---- the surface ---------------------------------------------------------------------------------

export const geminiSurface: GenerateSurface = {
  parse(input: ParseInput): NormalizedRequest {
    const model = pathModel(input.model);
    return normalized(model, parseGenerateBody(input.body, model), input.headers, input.limits, input.stream ?? false);
  },

  answer(result: InvokeResult): JsonAnswer {
    return { body: googleResponseOf(result), asIs: true };
  },

  stream(answer: InvokeStream | InvokeResult, ctx: SurfaceContext): StreamAnswer {
    return { stream: sseBody(sseFrames(answer, ctx.requestId)), headers: { ...SSE_HEADERS } };
  },

  error(error: GatewayError, requestId: string): ErrorAnswer {
    return { body: googleError(error, requestId) };
  },
};

// ---- countTokens ---------------------------------------------------------------------------------

/**
 * A countTokens body in either of Google's forms, `{contents}` or `{generateContentRequest: {...}}`, as
 * the request the gateway would run (its defaults for mode and wait; the count books no quota).
 */
export function parseCountTokens(body: unknown, model: string, limits: RequestLimits): NormalizedRequest {
  const id = pathModel(model);
  if (!isObject(body)) throw new GatewayError("invalid_json", "The body must be a JSON object.");
  const fields = camelKeys(body, "");
  for (const key of Object.keys(fields)) {
    if (key === "model") {
      if (typeof fields.model !== "string" || fields.model.replace(/^models\//, "") !== id) {
        throw bad("model", `model must be the path's model (models/${id}) or left out.`);
      }
    } else if (key !== "contents" && key !== "generateContentRequest") {
      throw unknownField("", key);
    }
  }
  const { contents, generateContentRequest } = fields;
  if (contents !== undefined && generateContentRequest !== undefined) {
    throw bad("contents", "Give contents or generateContentRequest, not both.");
  }
  if (contents === undefined && generateContentRequest === undefined) {
    throw new GatewayError("empty_input", "Give contents or generateContentRequest.");
  }
  const parsed = generateContentRequest === undefined
    ? parseGenerateBody({ contents }, id)
    : parseGenerateBody(generateContentRequest, id, "generateContentRequest");
  return normalized(id, parsed, new Headers(), limits, false);
}

/** Google's countTokens answer (cachedContentTokenCount and the per-modality details are left out). */
export function countTokensAnswer(totalTokens: number): { totalTokens: number } {
  return { totalTokens };
}

// ---- models --------------------------------------------------------------------------------------

const GENERATION_METHODS = ["generateContent", "streamGenerateContent", "countTokens"];
const DEFAULT_PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 1000;

/** Google's Model resource (the fields the gateway knows; unknown token limits are left out). */
export interface GeminiModel {
  name: string;
  baseModelId: string;
  displayName: string;
  description: string;
  inputTokenLimit?: number;
  outputTokenLimit?: number;
  supportedGenerationMethods: string[];
}

function limitsText(entry: ModelEntry): string {
  const known = [["RPM", entry.rpm], ["TPM", entry.tpm], ["RPD", entry.rpd]].filter(([, v]) => v !== null)
    .map(([name, v]) => `${name} ${v}`);
  return known.length === 0
    ? "with no request or token limit of its own"
    : `within ${known.join(", ")} shared by all its callers`;
}

function modelResource(entry: ModelEntry, id: string): GeminiModel {
  const alias = id === entry.model ? "" : `Alias of models/${entry.model}. `;
  return {
    name: `models/${id}`,
    baseModelId: entry.model,
    displayName: entry.displayName ?? entry.model,
    description: `${alias}Served through EVE LLM Gateway ${limitsText(entry)}.`,
    ...(entry.inputTokenLimit === null ? {} : { inputTokenLimit: entry.inputTokenLimit }),
    ...(entry.outputTokenLimit === null ? {} : { outputTokenLimit: entry.outputTokenLimit }),
    supportedGenerationMethods: [...GENERATION_METHODS],
  };
}

/** Every name a caller may use: each model, then its aliases, each its own entry (as Google lists aliases). */
function allResources(models: readonly ModelEntry[]): GeminiModel[] {
  return models.flatMap((m) => [m.model, ...m.aliases].map((id) => modelResource(m, id)));
}

/**
 * GET models: Google's ListModelsResponse. pageSize as Google's (default 50, at most 1000); the page
 * token is the offset of the next entry, valid while the model list does not change.
 */
export function geminiModels(
  models: ModelEntry[],
  pageSize?: number,
  pageToken?: string,
): { models: GeminiModel[]; nextPageToken?: string } {
  if (pageSize !== undefined && (!Number.isInteger(pageSize) || pageSize < 0)) {
    throw bad("pageSize", "pageSize must be a whole number (at most 1000 are returned).");
  }
  const size = pageSize === undefined || pageSize === 0 ? DEFAULT_PAGE_SIZE : Math.min(pageSize, MAX_PAGE_SIZE);
  const all = allResources(models);
  let start = 0;
  if (pageToken !== undefined && pageToken !== "") {
    if (!/^\d{1,6}$/.test(pageToken) || Number(pageToken) > all.length) {
      throw bad("pageToken", "pageToken is not one this gateway gave; list again from the first page.");
    }
    start = Number(pageToken);
  }
  const end = start + size;
  return { models: all.slice(start, end), ...(end < all.length ? { nextPageToken: String(end) } : {}) };
}

/** GET models/{model}: the model by its id or an alias, or 404 not_found (said in Google's shape by error()). */
export function geminiModel(models: ModelEntry[], id: string): GeminiModel {
  const name = id.replace(/^models\//, "");
  const entry = models.find((m) => m.model === name || m.aliases.includes(name));
  if (entry === undefined) {
    throw new GatewayError(
      "not_found",
      `models/${
        boundedName(name)
      } is not found for API version v1beta. Call ListModels to see the models the gateway serves.`,
    );
  }
  return modelResource(entry, name);
}
