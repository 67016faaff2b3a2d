// The OpenAI-compatible surface: `POST …/llm-invoke/v1/chat/completions` and `GET …/llm-invoke/v1/models`,
// so code written for the official OpenAI clients reaches the gateway by changing base_url and api_key.
// A chat.completions body becomes the gateway's one request (Gemini contents, generationConfig, tools);
// Google's answer, stream and the gateway's errors are said back in OpenAI's shapes. docs/openai.md
// is the reference of what maps to what and what is refused.
import { z } from "zod";
import { GatewayError } from "../../_shared/errors.ts";
import type { GoogleResponse } from "../../_shared/google/types.ts";
import type { ErrorAnswer, JsonAnswer, StreamAnswer } from "../../_shared/envelope.ts";
import { sanitize } from "../../_shared/sanitize.ts";
import { invalidRequest } from "../../_shared/validation.ts";
import { googleResponseOf, type InvokeResult, type InvokeStream, isStream } from "../context.ts";
import type { ImageInfo } from "../images.ts";
import { checkPart, hasContent } from "../parts.ts";
import {
  checkMetadataSize,
  type Content,
  type GenerationConfig,
  joinText,
  type NormalizedRequest,
  type Part,
  type RequestExtras,
} from "../request.ts";
import type { ModelEntry } from "../store.ts";
import { callOptionsFromHeaders } from "./call-options.ts";
import { SSE_HEADERS, sseBody, sseFrame } from "./sse.ts";
import type { GenerateSurface, ParseInput, SurfaceContext } from "./surface.ts";

// ---- the request -------------------------------------------------------------------------------------

const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
// Gemini's rule for a function name (it also allows . and :, which OpenAI's does not).
const FUNCTION_NAME = /^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$/;
const MAX_MESSAGES = 1000;
const MAX_PARTS = 1000;

/**
 * reasoning_effort as a Gemini thinking budget (tokens). "none" and "minimal" turn thinking off (a model
 * that cannot think less, Gemini 2.5 Pro, refuses 0: Google's 400 reaches the caller); the others are
 * the budgets Google's own OpenAI-compatible endpoint documents for low / medium / high.
 */
export const THINKING_BUDGETS = { none: 0, minimal: 0, low: 1024, medium: 8192, high: 24576 } as const;

/**
 * Fields OpenAI defines that the gateway cannot honour: refused (400 unsupported_feature naming them)
 * rather than silently ignored, since the caller would otherwise get an answer without what it asked for.
 * Each test says whether the value given asks for the feature (logprobs: false asks for nothing).
 */
const UNSUPPORTED: Record<string, { asks: (value: unknown) => boolean; why: string }> = {
  logprobs: { asks: (v) => v === true, why: "Gemini's answers carry no log probabilities here" },
  top_logprobs: { asks: (v) => v !== null && v !== undefined, why: "Gemini's answers carry no log probabilities here" },
  logit_bias: {
    asks: (v) => v !== null && typeof v === "object" && Object.keys(v).length > 0,
    why: "Gemini takes no logit bias",
  },
  audio: { asks: (v) => v !== null && v !== undefined, why: "audio output is not offered" },
  modalities: {
    asks: (v) => Array.isArray(v) && v.some((m) => m !== "text"),
    why: "only text output is offered",
  },
  prediction: { asks: (v) => v !== null && v !== undefined, why: "predicted outputs are not offered" },
  web_search_options: { asks: (v) => v !== null && v !== undefined, why: "web search is not offered" },
  functions: { asks: (v) => v !== null && v !== undefined, why: "use tools instead of the legacy functions" },
  function_call: {
    asks: (v) => v !== null && v !== undefined,
    why: "use tool_choice instead of the legacy function_call",
  },
  verbosity: { asks: (v) => v !== null && v !== undefined, why: "Gemini takes no verbosity setting" },
};

const textPartSchema = z.looseObject({ type: z.literal("text"), text: z.string() });
// Parts are typed loosely here and read one by one below, so that an image or an unsupported kind gets
// its own error naming the part.
const anyPartSchema = z.looseObject({ type: z.string() });
const textContent = z.union([z.string(), z.array(textPartSchema).max(MAX_PARTS)]);

const toolCallSchema = z.looseObject({
  id: z.string().min(1).max(256),
  type: z.string(),
  function: z.looseObject({ name: z.string().min(1), arguments: z.string() }).optional(),
  extra_content: z.looseObject({ google: z.looseObject({ thought_signature: z.string().optional() }).optional() })
    .optional(),
});

// Messages are loose objects: a client that sends back the assistant message it received (with
// `refusal`, `annotations`, …) must not be refused for fields that say nothing to Gemini.
const messageSchema = z.discriminatedUnion("role", [
  z.looseObject({ role: z.literal("system"), content: textContent, name: z.string().optional() }),
  z.looseObject({ role: z.literal("developer"), content: textContent, name: z.string().optional() }),
  z.looseObject({
    role: z.literal("user"),
    content: z.union([z.string(), z.array(anyPartSchema).max(MAX_PARTS)]),
    name: z.string().optional(),
  }),
  z.looseObject({
    role: z.literal("assistant"),
    content: z.union([z.string(), z.array(anyPartSchema).max(MAX_PARTS)]).nullable().optional(),
    tool_calls: z.array(toolCallSchema).max(128).optional(),
    refusal: z.string().nullable().optional(),
    name: z.string().optional(),
  }),
  z.looseObject({ role: z.literal("tool"), content: textContent, tool_call_id: z.string().min(1) }),
  z.looseObject({ role: z.literal("function") }),
]);

const functionToolSchema = z.looseObject({
  type: z.string(),
  function: z.looseObject({
    name: z.string().regex(FUNCTION_NAME, "must be 1-64 characters of A-Z a-z 0-9 _ . : - (not starting with a digit)"),
    description: z.string().optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
    strict: z.boolean().nullable().optional(),
  }).optional(),
});

const namedFunction = z.looseObject({ type: z.literal("function"), function: z.looseObject({ name: z.string() }) });
const toolChoiceSchema = z.union([
  z.enum(["none", "auto", "required"]),
  namedFunction,
  z.looseObject({
    type: z.literal("allowed_tools"),
    allowed_tools: z.looseObject({ mode: z.enum(["auto", "required"]), tools: z.array(namedFunction).min(1) }),
  }),
]);

const responseFormatSchema = z.discriminatedUnion("type", [
  z.looseObject({ type: z.literal("text") }),
  z.looseObject({ type: z.literal("json_object") }),
  z.looseObject({
    type: z.literal("json_schema"),
    json_schema: z.looseObject({
      name: z.string().min(1).max(64),
      description: z.string().optional(),
      schema: z.record(z.string(), z.unknown()).optional(),
      strict: z.boolean().nullable().optional(),
    }),
  }),
]);

const chatCompletionSchema = z.strictObject({
  model: z.string().transform((m) => m.replace(/^models\//, "")).pipe(
    z.string().regex(MODEL_NAME, "must be a model id such as gemini-2.5-flash"),
  ),
  messages: z.array(messageSchema).min(1).max(MAX_MESSAGES),
  max_tokens: z.number().int().min(1).max(1_000_000).nullable().optional(),
  max_completion_tokens: z.number().int().min(1).max(1_000_000).nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().min(0).max(1).nullable().optional(),
  stop: z.union([z.string().min(1).max(200), z.array(z.string().min(1).max(200)).max(5)]).nullable().optional(),
  n: z.number().int().min(1).max(8).nullable().optional(),
  seed: z.number().int().nullable().optional(),
  presence_penalty: z.number().min(-2).max(2).nullable().optional(),
  frequency_penalty: z.number().min(-2).max(2).nullable().optional(),
  response_format: responseFormatSchema.optional(),
  reasoning_effort: z.enum(["none", "minimal", "low", "medium", "high"]).nullable().optional(),
  tools: z.array(functionToolSchema).max(128).optional(),
  tool_choice: toolChoiceSchema.optional(),
  stream: z.boolean().nullable().optional(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullable().optional(),
  metadata: z.record(z.string(), z.unknown()).nullable().optional(),
  // Accepted and ignored: they change nothing in what Gemini answers.
  user: z.string().optional(),
  store: z.boolean().nullable().optional(),
  service_tier: z.string().nullable().optional(),
  parallel_tool_calls: z.boolean().optional(),
  prompt_cache_key: z.string().optional(),
  safety_identifier: z.string().optional(),
  // Checked against UNSUPPORTED before the schema runs; the values that ask for nothing pass.
  ...Object.fromEntries(Object.keys(UNSUPPORTED).map((k) => [k, z.unknown().optional()])),
});

type ChatCompletionBody = z.infer<typeof chatCompletionSchema>;
type Message = z.infer<typeof messageSchema>;

/**
 * stream_options.include_usage, per request. NormalizedRequest is the gateway's one request shape and has
 * no field for it (only this surface has the notion), and the surface's stream() receives the very
 * object parse() returned (ctx.request): a WeakMap keyed by it carries the flag without widening the
 * shared type, and forgets it with the request.
 */
const includeUsageOf = new WeakMap<NormalizedRequest, boolean>();

function unsupported(field: string, message: string): GatewayError {
  return new GatewayError("unsupported_feature", `${field}: ${message}.`, { details: { field, feature: field } });
}

function invalid(field: string, message: string): GatewayError {
  return new GatewayError("invalid_request", `${field}: ${message}`, { details: { field } });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function parseChatCompletion(input: ParseInput): NormalizedRequest {
  const body = input.body;
  if (!isObject(body)) throw new GatewayError("invalid_json", "The body must be a JSON object.");
  const asked = Object.keys(UNSUPPORTED).filter((field) => field in body && UNSUPPORTED[field].asks(body[field]));
  if (asked.length > 0) {
    throw new GatewayError(
      "unsupported_feature",
      `Not supported by this gateway: ${asked.map((f) => `${f} (${UNSUPPORTED[f].why})`).join("; ")}.`,
      { details: { field: asked[0], features: asked } },
    );
  }
  const parsed = chatCompletionSchema.safeParse(body);
  if (!parsed.success) throw invalidRequest(parsed.error);
  const req = parsed.data;

  const options = callOptionsFromHeaders(input.headers, input.limits);
  const { contents, system, images } = toContents(req.messages);
  const metadata = req.metadata ?? {};
  checkMetadataSize(metadata, input.limits);

  const request: NormalizedRequest = {
    model: req.model,
    ...(options.fallbackModels === undefined ? {} : { fallbackModels: options.fallbackModels }),
    contents,
    ...(system === undefined ? {} : { system }),
    generationConfig: generationConfigOf(req),
    extras: extrasOf(req),
    imageTokens: images.reduce((sum, image) => sum + image.tokens, 0),
    stream: input.stream ?? req.stream === true,
    mode: options.mode,
    maxWaitMs: options.maxWaitMs,
    ...(options.requestId === undefined ? {} : { requestId: options.requestId }),
    metadata,
    includeCandidates: false,
    ...(options.priority === undefined ? {} : { priority: options.priority }),
  };
  includeUsageOf.set(request, req.stream_options?.include_usage === true);
  return request;
}

function generationConfigOf(req: ChatCompletionBody): GenerationConfig {
  if (
    req.max_tokens !== undefined && req.max_tokens !== null && req.max_completion_tokens !== undefined &&
    req.max_completion_tokens !== null && req.max_tokens !== req.max_completion_tokens
  ) {
    throw invalid("max_completion_tokens", "give max_completion_tokens or max_tokens, not two different values.");
  }
  const config: GenerationConfig = {};
  const maxTokens = req.max_completion_tokens ?? req.max_tokens;
  if (maxTokens !== null && maxTokens !== undefined) config.maxOutputTokens = maxTokens;
  if (req.temperature !== null && req.temperature !== undefined) config.temperature = req.temperature;
  if (req.top_p !== null && req.top_p !== undefined) config.topP = req.top_p;
  if (req.stop !== null && req.stop !== undefined) {
    const stop = typeof req.stop === "string" ? [req.stop] : req.stop;
    if (stop.length > 0) config.stopSequences = stop;
  }
  if (req.n !== null && req.n !== undefined && req.n > 1) config.candidateCount = req.n;
  if (req.seed !== null && req.seed !== undefined) config.seed = req.seed;
  if (req.presence_penalty !== null && req.presence_penalty !== undefined) {
    config.presencePenalty = req.presence_penalty;
  }
  if (req.frequency_penalty !== null && req.frequency_penalty !== undefined) {
    config.frequencyPenalty = req.frequency_penalty;
  }
  const format = req.response_format;
  if (format?.type === "json_object") config.responseMimeType = "application/json";
  if (format?.type === "json_schema") {
    config.responseMimeType = "application/json";
    if (format.json_schema.schema !== undefined) config.responseJsonSchema = format.json_schema.schema;
  }
  if (req.reasoning_effort !== null && req.reasoning_effort !== undefined) {
    config.thinkingConfig = { thinkingBudget: THINKING_BUDGETS[req.reasoning_effort] };
  }
  return config;
}

function extrasOf(req: ChatCompletionBody): RequestExtras {
  const extras: RequestExtras = {};
  const names: string[] = [];
  if (req.tools !== undefined && req.tools.length > 0) {
    const declarations = req.tools.map((tool, i) => {
      if (tool.type !== "function") {
        throw unsupported(
          `tools[${i}].type`,
          `only function tools are offered (got ${sanitize(tool.type, { maxLength: 40 })})`,
        );
      }
      if (tool.function === undefined) throw invalid(`tools[${i}].function`, "a function tool needs its function.");
      names.push(tool.function.name);
      return {
        name: tool.function.name,
        ...(tool.function.description === undefined ? {} : { description: tool.function.description }),
        ...(tool.function.parameters === undefined ? {} : { parametersJsonSchema: tool.function.parameters }),
      };
    });
    extras.tools = [{ functionDeclarations: declarations }];
  }
  const choice = req.tool_choice;
  if (choice === undefined) return extras;
  if (names.length === 0) {
    // Without tools, "none" and "auto" say nothing; anything that asks for a call cannot be met.
    if (choice === "none" || choice === "auto") return extras;
    throw invalid("tool_choice", "asks for a tool call but the request has no tools.");
  }
  const config = (mode: "NONE" | "AUTO" | "ANY", allowed?: string[]) => ({
    functionCallingConfig: { mode, ...(allowed === undefined ? {} : { allowedFunctionNames: allowed }) },
  });
  const known = (name: string, field: string) => {
    if (!names.includes(name)) throw invalid(field, `${sanitize(name, { maxLength: 64 })} is not one of tools.`);
    return name;
  };
  if (choice === "none") extras.toolConfig = config("NONE");
  else if (choice === "auto") extras.toolConfig = config("AUTO");
  else if (choice === "required") extras.toolConfig = config("ANY");
  else if (choice.type === "function") {
    extras.toolConfig = config("ANY", [known(choice.function.name, "tool_choice.function.name")]);
  } else {
    // Gemini limits the callable functions only when a call is required (mode ANY).
    if (choice.allowed_tools.mode === "auto") {
      throw unsupported("tool_choice.allowed_tools.mode", 'Gemini restricts functions only with mode "required"');
    }
    extras.toolConfig = config(
      "ANY",
      choice.allowed_tools.tools.map((t, i) => known(t.function.name, `tool_choice.allowed_tools.tools[${i}]`)),
    );
  }
  return extras;
}

// ---- messages → contents -----------------------------------------------------------------------------

interface Converted {
  contents: Content[];
  system?: string;
  images: ImageInfo[];
}

function toContents(messages: readonly Message[]): Converted {
  const system: string[] = [];
  const contents: Content[] = [];
  const images: ImageInfo[] = [];
  // tool_call_id → the function's name: a tool message names only the call, Gemini wants the name.
  const calls = new Map<string, string>();

  messages.forEach((message, i) => {
    const where = `messages[${i}]`;
    const parts: Part[] = [];
    const add = (part: Part, at: string) => parts.push(checkPart(part, at, images));
    switch (message.role) {
      case "system":
      case "developer":
        system.push(textOf(message.content));
        return;
      case "function":
        throw unsupported(`${where}.role`, 'the legacy "function" role is not offered; use tool messages');
      case "user":
        if (typeof message.content === "string") {
          if (message.content.trim() !== "") add({ text: message.content }, `${where}.content`);
        } else {
          message.content.forEach((part, j) => {
            const at = `${where}.content[${j}]`;
            if (part.type === "text") {
              if (typeof part.text !== "string") throw invalid(`${at}.text`, "must be a string.");
              if (part.text.trim() !== "") add({ text: part.text }, at);
            } else if (part.type === "image_url") {
              add({ inlineData: imageOf(part.image_url, `${at}.image_url`) }, at);
            } else {
              throw unsupported(
                `${at}.type`,
                `only text and image_url parts are offered (got ${sanitize(part.type, { maxLength: 40 })})`,
              );
            }
          });
        }
        break;
      case "assistant": {
        if (isObject(message.audio)) throw unsupported(`${where}.audio`, "audio is not offered");
        if (isObject(message.function_call)) {
          throw unsupported(`${where}.function_call`, "the legacy function_call is not offered; use tool_calls");
        }
        const content = message.content;
        if (typeof content === "string") {
          if (content.trim() !== "") add({ text: content }, `${where}.content`);
        } else if (Array.isArray(content)) {
          content.forEach((part, j) => {
            const at = `${where}.content[${j}]`;
            // A refusal part is what the assistant said: kept as its text.
            const text = part.type === "text" ? part.text : part.type === "refusal" ? part.refusal : undefined;
            if (typeof text !== "string") {
              throw invalid(
                `${at}`,
                "an assistant part is text ({type: text, text}) or refusal ({type: refusal, refusal}).",
              );
            }
            if (text.trim() !== "") add({ text }, at);
          });
        }
        (message.tool_calls ?? []).forEach((call, j) => {
          const at = `${where}.tool_calls[${j}]`;
          if (call.type !== "function") throw unsupported(`${at}.type`, "only function tool calls are offered");
          if (call.function === undefined) throw invalid(`${at}.function`, "a function call needs its function.");
          calls.set(call.id, call.function.name);
          const signature = call.extra_content?.google?.thought_signature;
          add({
            functionCall: {
              name: call.function.name,
              args: argumentsOf(call.function.arguments, `${at}.function.arguments`),
              id: call.id,
            },
            // Gemini 3 wants its thought signature back with the call it came with.
            ...(signature === undefined ? {} : { thoughtSignature: signature }),
          }, at);
        });
        break;
      }
      case "tool": {
        const name = calls.get(message.tool_call_id);
        if (name === undefined) {
          throw invalid(`${where}.tool_call_id`, "names no tool call of an earlier assistant message.");
        }
        add({
          functionResponse: {
            name,
            response: { content: toolOutputOf(textOf(message.content)) },
            id: message.tool_call_id,
          },
        }, where);
        break;
      }
    }
    if (!hasContent(parts)) {
      throw new GatewayError("empty_input", `${where} has no content.`, { details: { field: where } });
    }
    contents.push({ role: message.role === "assistant" ? "model" : "user", parts });
  });

  if (contents.length === 0) {
    throw new GatewayError("empty_input", "messages has no user, assistant or tool message.", {
      details: { field: "messages" },
    });
  }
  const joined = joinText(system);
  return { contents, ...(joined === undefined ? {} : { system: joined }), images };
}

function textOf(content: string | ReadonlyArray<{ text: string }>): string {
  return typeof content === "string" ? content : content.map((p) => p.text).join("");
}

/** A tool's output: a JSON object stays structured for Gemini; anything else is passed as the string. */
function toolOutputOf(text: string): unknown {
  try {
    const value: unknown = JSON.parse(text);
    return isObject(value) ? value : text;
  } catch {
    return text;
  }
}

function argumentsOf(raw: string, field: string): Record<string, unknown> {
  if (raw.trim() === "") return {};
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw invalid(field, "is not valid JSON.");
  }
  if (!isObject(value)) throw invalid(field, "must be a JSON object.");
  return value;
}

const DATA_URL = "data:";
const BASE64 = ";base64,";

/**
 * `data:image/png;base64,…` → Gemini's inlineData. Only the short prefix is looked at here; the bytes
 * are checked by checkPart (images.ts) like any inline image. A URL to fetch is refused: the gateway
 * would have to download it inside the caller's wait, from wherever it points.
 */
function imageOf(raw: unknown, field: string): { mimeType: string; data: string } {
  const url = isObject(raw) ? raw.url : undefined;
  if (typeof url !== "string") throw invalid(`${field}.url`, "must be a string (a data URL).");
  if (!url.startsWith(DATA_URL)) {
    throw unsupported(
      `${field}.url`,
      "images must be sent as data URLs (data:image/png;base64,…); the gateway does not fetch URLs, so send images as data URLs",
    );
  }
  const comma = url.indexOf(",");
  const header = comma === -1 ? "" : url.slice(0, comma + 1);
  if (!header.endsWith(BASE64)) throw invalid(`${field}.url`, "a data URL must be base64 (data:image/png;base64,…).");
  const mimeType = header.slice(DATA_URL.length, -BASE64.length).toLowerCase();
  return { mimeType: mimeType === "image/jpg" ? "image/jpeg" : mimeType, data: url.slice(comma + 1) };
}

// ---- the answer --------------------------------------------------------------------------------------

interface RawPart {
  text?: unknown;
  thought?: unknown;
  thoughtSignature?: unknown;
  functionCall?: { name?: unknown; args?: unknown; id?: unknown };
}
interface RawCandidate {
  index?: unknown;
  content?: { parts?: RawPart[] };
  finishReason?: unknown;
}

const FILTERED = new Set([
  "SAFETY",
  "RECITATION",
  "BLOCKLIST",
  "PROHIBITED_CONTENT",
  "SPII",
  "IMAGE_SAFETY",
  "IMAGE_PROHIBITED_CONTENT",
]);

/** Google's finishReason in OpenAI's words; a blocked prompt (BLOCKED_<reason>) is filtered content too. */
export function finishReasonOf(
  reason: unknown,
  calledFunctions: boolean,
): "stop" | "length" | "tool_calls" | "content_filter" {
  if (reason === "MAX_TOKENS") return "length";
  if (typeof reason === "string" && (FILTERED.has(reason) || reason.startsWith("BLOCKED_"))) return "content_filter";
  return calledFunctions ? "tool_calls" : "stop";
}

function candidatesOf(response: GoogleResponse): RawCandidate[] {
  return Array.isArray(response.candidates) ? response.candidates as RawCandidate[] : [];
}

function indexOf(candidate: RawCandidate, position: number): number {
  return typeof candidate.index === "number" ? candidate.index : position;
}

function textOfParts(parts: readonly RawPart[]): string {
  let text = "";
  for (const part of parts) if (typeof part.text === "string" && part.thought !== true) text += part.text;
  return text;
}

interface ToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
  extra_content?: { google: { thought_signature: string } };
}

/** The function calls of some parts, numbered from `first` within their choice. */
function toolCallsOf(parts: readonly RawPart[], requestId: string, choice: number, first: number): ToolCall[] {
  const calls: ToolCall[] = [];
  for (const part of parts) {
    const call = part.functionCall;
    if (!isObject(call) || typeof call.name !== "string") continue;
    const j = first + calls.length;
    calls.push({
      id: typeof call.id === "string" && call.id !== "" ? call.id : `call_${requestId}_${choice}_${j}`,
      type: "function",
      function: { name: call.name, arguments: JSON.stringify(call.args ?? {}) },
      // Gemini 3 refuses the next turn without it: given to the caller to send back (see parse).
      ...(typeof part.thoughtSignature === "string"
        ? { extra_content: { google: { thought_signature: part.thoughtSignature } } }
        : {}),
    });
  }
  return calls;
}

function created(now: number): number {
  return Math.floor(now / 1000);
}

function completionId(requestId: string): string {
  return `chatcmpl-${requestId}`;
}

function usageOf(result: InvokeResult): Record<string, unknown> {
  const { prompt_tokens, completion_tokens, total_tokens } = result.usage;
  return { prompt_tokens, completion_tokens, total_tokens };
}

/** The choices of a whole answer (a replay of a streamed one included). */
function choicesOf(result: InvokeResult, requestId: string): Array<Record<string, unknown>> {
  const candidates = candidatesOf(googleResponseOf(result));
  if (candidates.length === 0) {
    // A blocked prompt has no candidate; OpenAI's clients expect choices[0].
    return [{
      index: 0,
      message: { role: "assistant", content: result.text === "" ? null : result.text, refusal: null },
      finish_reason: finishReasonOf(result.finish_reason, false),
      logprobs: null,
    }];
  }
  return candidates.map((candidate, position) => {
    const index = indexOf(candidate, position);
    const parts = candidate.content?.parts ?? [];
    // The first candidate's text is the gateway's own (result.text): a streamed answer keeps only its
    // last chunk as `response`, and the text of the chunks before it is in result.text alone.
    const text = position === 0 ? result.text : textOfParts(parts);
    const calls = toolCallsOf(parts, requestId, index, 0);
    return {
      index,
      message: {
        role: "assistant",
        content: text === "" && calls.length > 0 ? null : text,
        ...(calls.length === 0 ? {} : { tool_calls: calls }),
        refusal: null,
      },
      finish_reason: finishReasonOf(
        candidate.finishReason ?? (position === 0 ? result.finish_reason : null),
        calls.length > 0,
      ),
      logprobs: null,
    };
  });
}

function answer(result: InvokeResult, ctx: SurfaceContext): JsonAnswer {
  return {
    body: {
      id: completionId(ctx.requestId),
      object: "chat.completion",
      created: created(ctx.now),
      model: result.model,
      choices: choicesOf(result, ctx.requestId),
      usage: usageOf(result),
      system_fingerprint: null,
    },
    asIs: true,
  };
}

// ---- the stream --------------------------------------------------------------------------------------

/** Writes OpenAI's chunk frames of one answer, and remembers what each choice has said so far. */
class ChunkWriter {
  /** Per choice index: its tool calls so far (their stream index), and whether it has finished. */
  private readonly choices = new Map<number, { toolCalls: number; finished: boolean }>();

  constructor(
    private readonly ctx: SurfaceContext,
    private readonly model: string,
    private readonly includeUsage: boolean,
  ) {}

  frame(choices: unknown[], usage?: Record<string, unknown>): string {
    return sseFrame({
      id: completionId(this.ctx.requestId),
      object: "chat.completion.chunk",
      created: created(this.ctx.now),
      model: this.model,
      system_fingerprint: null,
      choices,
      // With include_usage, every chunk but the last says `usage: null`, as OpenAI's do.
      ...(this.includeUsage ? { usage: usage ?? null } : {}),
    });
  }

  /** A delta of a choice; its first one says the role. */
  delta(index: number, delta: Record<string, unknown>): string {
    const first = !this.choices.has(index);
    if (first) this.choices.set(index, { toolCalls: 0, finished: false });
    return this.frame([{
      index,
      delta: { ...(first ? { role: "assistant" } : {}), ...delta },
      finish_reason: null,
      logprobs: null,
    }]);
  }

  /** The chunk that ends a choice (once), opening it first if it said nothing. */
  finish(index: number, reason: string): string[] {
    const frames = this.choices.has(index) ? [] : [this.delta(index, { content: "" })];
    const state = this.choices.get(index)!;
    if (state.finished) return frames;
    state.finished = true;
    return [...frames, this.frame([{ index, delta: {}, finish_reason: reason, logprobs: null }])];
  }

  /** The frames of one candidate of a Google chunk: its text and calls, then its finish if it has one. */
  candidate(candidate: RawCandidate, index: number): string[] {
    const parts = candidate.content?.parts ?? [];
    const text = textOfParts(parts);
    const before = this.choices.get(index)?.toolCalls ?? 0;
    const calls = toolCallsOf(parts, this.ctx.requestId, index, before).map((call, k) => ({
      index: before + k,
      ...call,
    }));
    const frames: string[] = [];
    if (text !== "" || calls.length > 0 || !this.choices.has(index)) {
      frames.push(this.delta(index, {
        ...(text === "" && calls.length > 0 ? {} : { content: text }),
        ...(calls.length === 0 ? {} : { tool_calls: calls }),
      }));
      this.choices.get(index)!.toolCalls += calls.length;
    }
    if (typeof candidate.finishReason === "string") {
      frames.push(
        ...this.finish(index, finishReasonOf(candidate.finishReason, this.choices.get(index)!.toolCalls > 0)),
      );
    }
    return frames;
  }

  /** Ends what Google left open: every choice finishes, and a stream without any says one. */
  end(finishReason: string | null): string[] {
    if (this.choices.size === 0) return this.finish(0, finishReasonOf(finishReason, false));
    const frames: string[] = [];
    for (const [index, state] of this.choices) {
      if (!state.finished) frames.push(...this.finish(index, finishReasonOf(null, state.toolCalls > 0)));
    }
    return frames;
  }
}

/** OpenAI's chunk frames for a Google stream (or a replayed whole answer), then `[DONE]`. */
async function* chunkFrames(answer: InvokeStream | InvokeResult, ctx: SurfaceContext): AsyncGenerator<string> {
  const includeUsage = includeUsageOf.get(ctx.request) ?? false;
  const writer = new ChunkWriter(ctx, answer.model, includeUsage);

  if (!isStream(answer)) {
    // A replay: each choice whole in one chunk, then its finish.
    for (const choice of choicesOf(answer, ctx.requestId)) {
      const index = choice.index as number;
      const message = choice.message as { content: string | null; tool_calls?: ToolCall[] };
      const calls = (message.tool_calls ?? []).map((call, k) => ({ index: k, ...call }));
      yield writer.delta(index, {
        ...(message.content === null ? {} : { content: message.content }),
        ...(calls.length === 0 ? {} : { tool_calls: calls }),
      });
      for (const f of writer.finish(index, choice.finish_reason as string)) yield f;
    }
    if (includeUsage) yield writer.frame([], usageOf(answer));
    yield sseFrame("[DONE]");
    return;
  }

  try {
    for await (const chunk of answer.chunks) {
      const candidates = candidatesOf(chunk);
      for (const [position, candidate] of candidates.entries()) {
        for (const f of writer.candidate(candidate, indexOf(candidate, position))) yield f;
      }
      const blocked = (chunk.promptFeedback as { blockReason?: unknown } | undefined)?.blockReason;
      if (candidates.length === 0 && typeof blocked === "string") {
        for (const f of writer.finish(0, "content_filter")) yield f;
      }
    }
  } catch (error) {
    if (!(error instanceof GatewayError)) throw error;
    // The headers are sent: the error is said in the stream, where OpenAI's clients read it (a frame
    // with `error`), and no [DONE] follows, so no client takes the answer for complete.
    yield sseFrame({ error: openAiErrorObject(error, ctx.requestId) });
    return;
  }
  const whole = answer.result();
  for (const f of writer.end(whole.finish_reason)) yield f;
  if (includeUsage) yield writer.frame([], usageOf(whole));
  yield sseFrame("[DONE]");
}

function stream(answer: InvokeStream | InvokeResult, ctx: SurfaceContext): StreamAnswer {
  return { stream: sseBody(chunkFrames(answer, ctx)), headers: { ...SSE_HEADERS } };
}

// ---- errors ------------------------------------------------------------------------------------------

/** OpenAI's error `type` for a status. */
function errorType(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 409) return "conflict_error";
  if (status === 429) return "rate_limit_error";
  if (status >= 500) return "api_error";
  return "invalid_request_error";
}

/** The field an error is about, as OpenAI's `param`: the gateway's details name it (or its first issue). */
function paramOf(error: GatewayError): string | null {
  const details = error.details ?? {};
  if (typeof details.field === "string") return details.field;
  if (typeof details.header === "string") return details.header;
  const issues = details.issues;
  if (Array.isArray(issues) && isObject(issues[0]) && typeof issues[0].path === "string" && issues[0].path !== "") {
    return issues[0].path;
  }
  return null;
}

/**
 * OpenAI's error object. `code` is the gateway's stable code (docs/errors.md), except a 429's, which is
 * OpenAI's own "rate_limit_exceeded" (the limit that refused is in `limit`). The gateway's details and a
 * 429's limit and retry_after_ms ride along: OpenAI's SDKs expose this object as the error's body.
 */
export function openAiErrorObject(error: GatewayError, requestId: string): Record<string, unknown> {
  return {
    // First, so that none of them can hide the fields OpenAI's clients read.
    ...error.extra,
    message: error.message,
    type: errorType(error.status),
    param: paramOf(error),
    code: error.status === 429 ? "rate_limit_exceeded" : error.code,
    ...(error.details === undefined ? {} : { details: error.details }),
    request_id: requestId,
  };
}

function error(error: GatewayError, requestId: string): ErrorAnswer {
  const headers: Record<string, string> = {};
  const retryAfterMs = error.extra?.retry_after_ms;
  if (error.status === 429 && typeof retryAfterMs === "number") {
    // OpenAI's SDKs read retry-after-ms before retry-after: the exact wait, then whole seconds rounded up.
    // "Retry-After" is spelled as the gateway's own header, so the two merge into one, not "2, 2".
    headers["retry-after-ms"] = String(retryAfterMs);
    headers["Retry-After"] = String(Math.max(1, Math.ceil(retryAfterMs / 1000)));
  }
  return { body: { error: openAiErrorObject(error, requestId) }, headers };
}

// ---- models ------------------------------------------------------------------------------------------

/** One entry of /v1/models: `id` is the model's id or one of its aliases. */
export function openAiModel(_entry: ModelEntry, id: string, now: number): Record<string, unknown> {
  return { id, object: "model", created: created(now), owned_by: "google" };
}

/** GET /v1/models: every model the gateway serves, under its id and under each alias (each a name callers may use). */
export function openAiModels(models: ModelEntry[], now: number): Record<string, unknown> {
  const seen = new Set<string>();
  const data: Array<Record<string, unknown>> = [];
  for (const entry of models) {
    for (const id of [entry.model, ...entry.aliases]) {
      if (seen.has(id)) continue;
      seen.add(id);
      data.push(openAiModel(entry, id, now));
    }
  }
  return { object: "list", data };
}

export const openAiSurface: GenerateSurface = {
  parse: parseChatCompletion,
  answer,
  stream,
  error,
};

/** Whether the request's stream ends with a usage chunk (stream_options.include_usage). */
export function includesUsage(request: NormalizedRequest): boolean {
  return includeUsageOf.get(request) ?? false;
}
