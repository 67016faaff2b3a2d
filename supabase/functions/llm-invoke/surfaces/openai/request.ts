// A chat.completions body → the gateway's one request: the body's schema, OpenAI's fields the gateway
// cannot honour (refused by name, not silently ignored), the sampling fields and response_format as
// the hub's options, and the x-eve-* call options. messages.ts and tools.ts translate the rest.
import { z } from "zod";
import { GatewayError } from "../../../_shared/errors.ts";
import type { HubOptions } from "../../../_shared/upstream/hub.ts";
import type { Ask, NormalizedRequest } from "../../contract.ts";
import { OUTPUT_CAP_CODE } from "../../field-codes.ts";
import { invalidRequest } from "../../../_shared/validation.ts";
import { checkMetadata } from "../shared/request-rules.ts";
import { imageTokensOf } from "../../model/images.ts";
import { callOptionsFromHeaders } from "../shared/call-options.ts";
import type { ParseInput } from "../shared/surface.ts";
import { invalid } from "./checks.ts";
import { isObject } from "../../../_shared/json.ts";
import { messageSchema, toMessages } from "./messages.ts";
import { functionToolSchema, toolChoiceSchema, toolsOf } from "./tools.ts";

const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const MAX_MESSAGES = 1000;

/**
 * reasoning_effort as a thinking budget (tokens). "none" and "minimal" turn thinking off (a model
 * that cannot think less, Gemini 2.5 Pro, refuses 0: Google's 400 reaches the caller); the others are
 * the budgets Google's own OpenAI-compatible endpoint documents for low / medium / high.
 */
export const THINKING_BUDGETS = { none: 0, minimal: 0, low: 1024, medium: 8192, high: 24576 } as const;

/**
 * Fields only OpenAI's models honour: passed to an OpenAI model in the caller's body, and refused by
 * any other model (400 unsupported_feature naming them, model-chain.ts) rather than silently ignored,
 * since the caller would otherwise get an answer without what it asked for. Each test says whether
 * the value given asks for the feature (logprobs: false asks for nothing).
 */
const UNSUPPORTED: Record<string, { asks: (value: unknown) => boolean; why: string }> = {
  logprobs: { asks: (v) => v === true, why: "only OpenAI's models give log probabilities" },
  top_logprobs: { asks: (v) => v !== null && v !== undefined, why: "only OpenAI's models give log probabilities" },
  logit_bias: {
    asks: (v) => v !== null && typeof v === "object" && Object.keys(v).length > 0,
    why: "only OpenAI's models take a logit bias",
  },
  audio: { asks: (v) => v !== null && v !== undefined, why: "audio output is OpenAI's audio models' only" },
  modalities: {
    asks: (v) => Array.isArray(v) && v.some((m) => m !== "text"),
    why: "output other than text is OpenAI's models' only",
  },
  prediction: { asks: (v) => v !== null && v !== undefined, why: "predicted outputs are OpenAI's only" },
  web_search_options: { asks: (v) => v !== null && v !== undefined, why: "web search is OpenAI's search models' only" },
  functions: { asks: (v) => v !== null && v !== undefined, why: "the legacy functions are OpenAI's only; use tools" },
  function_call: {
    asks: (v) => v !== null && v !== undefined,
    why: "the legacy function_call is OpenAI's only; use tool_choice",
  },
  verbosity: { asks: (v) => v !== null && v !== undefined, why: "verbosity is OpenAI's models' only" },
};

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
  // Google's tier for the call, within what the caller's class allows (service-tiers.ts). OpenAI's
  // values: "flex" and "priority" ask for Google's; "auto", "default" and "scale" (OpenAI's own
  // processing plans, nothing Google has) leave it to the class's row, as null does. "standard" is
  // Google's name, taken too.
  service_tier: z.enum(["auto", "default", "scale", "flex", "priority", "standard"]).nullable().optional(),
  parallel_tool_calls: z.boolean().optional(),
  prompt_cache_key: z.string().optional(),
  safety_identifier: z.string().optional(),
  // Checked against UNSUPPORTED before the schema runs; the values that ask for nothing pass.
  ...Object.fromEntries(Object.keys(UNSUPPORTED).map((k) => [k, z.unknown().optional()])),
});

type ChatCompletionBody = z.infer<typeof chatCompletionSchema>;

export function parseChatCompletion(input: ParseInput): NormalizedRequest {
  const body = input.body;
  if (!isObject(body)) throw new GatewayError("invalid_json", "The body must be a JSON object.");
  const asked = Object.keys(UNSUPPORTED).filter((field) => field in body && UNSUPPORTED[field].asks(body[field]));
  const parsed = chatCompletionSchema.safeParse(body);
  if (!parsed.success) throw invalidRequest(parsed.error);
  const req = parsed.data;

  const options = callOptionsFromHeaders(input.headers, input.limits);
  const { only: toolsOnly, ...tools } = toolsOf(req);
  const only = [...asked.map((field) => ({ field, why: UNSUPPORTED[field].why })), ...toolsOnly];
  const { messages, system, images } = toMessages(req.messages);
  const metadata = req.metadata ?? {};
  checkMetadata(metadata, input.limits);

  return {
    model: req.model,
    ...options, // mode, wait, and the request id, priority and fallbacks when given
    messages,
    ...(system === undefined ? {} : { system }),
    options: optionsOf(req),
    ...tools,
    asks: asksOf(req, (req.tools ?? []).length > 0),
    outputCapField: {
      words: req.max_completion_tokens === undefined || req.max_completion_tokens === null
        ? "max_tokens"
        : "max_completion_tokens",
      code: OUTPUT_CAP_CODE,
    },
    optionFields: { temperature: "temperature", topP: "top_p", thinkingBudget: "reasoning_effort" },
    imageTokens: imageTokensOf(images),
    stream: input.stream ?? req.stream === true,
    metadata,
    ...(req.stream_options?.include_usage === true ? { streamUsage: true } : {}),
    ...serviceTierOf(req.service_tier),
    dialectBody: { dialect: "openai", body },
    ...(only.length === 0 ? {} : { only: { dialect: "openai", fields: only } }),
  };
}

function serviceTierOf(asked: string | null | undefined): Pick<NormalizedRequest, "serviceTier"> {
  if (asked === "flex" || asked === "priority" || asked === "standard") return { serviceTier: asked };
  return {};
}

/** What the body asks that a model may lack (details.feature keeps the codes every route gives). */
function asksOf(req: ChatCompletionBody, tools: boolean): NormalizedRequest["asks"] {
  const format = req.response_format?.type;
  const json: Ask | undefined = format === "json_object" || format === "json_schema"
    ? { feature: "responseMimeType", words: `response_format ${format}` }
    : undefined;
  return {
    ...(json === undefined ? {} : { json }),
    ...(tools ? { tools: { feature: "tools", words: "tools (function calling)" } } : {}),
  };
}

function optionsOf(req: ChatCompletionBody): HubOptions {
  if (
    req.max_tokens !== undefined && req.max_tokens !== null && req.max_completion_tokens !== undefined &&
    req.max_completion_tokens !== null && req.max_tokens !== req.max_completion_tokens
  ) {
    throw invalid("max_completion_tokens", "give max_completion_tokens or max_tokens, not two different values.");
  }
  const config: HubOptions = {};
  const maxTokens = req.max_completion_tokens ?? req.max_tokens;
  if (maxTokens !== null && maxTokens !== undefined) config.maxOutputTokens = maxTokens;
  if (req.temperature !== null && req.temperature !== undefined) config.temperature = req.temperature;
  if (req.top_p !== null && req.top_p !== undefined) config.topP = req.top_p;
  if (req.stop !== null && req.stop !== undefined) {
    const stop = typeof req.stop === "string" ? [req.stop] : req.stop;
    if (stop.length > 0) config.stop = stop;
  }
  if (req.n !== null && req.n !== undefined && req.n > 1) config.outputCount = req.n;
  if (req.seed !== null && req.seed !== undefined) config.seed = req.seed;
  if (req.presence_penalty !== null && req.presence_penalty !== undefined) {
    config.presencePenalty = req.presence_penalty;
  }
  if (req.frequency_penalty !== null && req.frequency_penalty !== undefined) {
    config.frequencyPenalty = req.frequency_penalty;
  }
  const format = req.response_format;
  if (format?.type === "json_object") config.format = { type: "json" };
  if (format?.type === "json_schema") {
    const schema = format.json_schema.schema;
    config.format = { type: "json", ...(schema === undefined ? {} : { schema }) };
  }
  if (req.reasoning_effort !== null && req.reasoning_effort !== undefined) {
    config.thinking = { budgetTokens: THINKING_BUDGETS[req.reasoning_effort] };
  }
  return config;
}

/** Whether the request's stream ends with a usage chunk (stream_options.include_usage). */
export function includesUsage(request: NormalizedRequest): boolean {
  return request.streamUsage === true;
}
