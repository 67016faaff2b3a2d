// A Responses API body (POST /v1/responses) → the gateway's one request, in the hub's words, for any
// model: `input` (a string, or items: messages of input_text / input_image / output_text, function
// calls and their outputs, reasoning items sent back), `instructions`, function tools and tool_choice,
// `text.format`, the sampling fields, `reasoning.effort`, `metadata`, `stream`, `store` and
// `previous_response_id`. A model whose provider serves OpenAI's Responses API (its provider row's
// has_responses_api: OpenAI's own) is sent the body as it came, unless it continues a stored response;
// every other model (a compatible service's without one, Google's, Anthropic's) the translation: what
// only OpenAI's own Responses API does (built-in tools, `include`, `background`, ...) is refused by
// name for it rather than silently dropped (model/adapt.ts). docs/openai.md says what maps to what.
import { z } from "zod";
import { GatewayError } from "../../../../_shared/errors.ts";
import type { HubMessage, HubOptions, HubPart, HubTool, HubToolChoice } from "../../../../_shared/upstream/hub.ts";
import { sanitize } from "../../../../_shared/sanitize.ts";
import { invalidRequest } from "../../../../_shared/validation.ts";
import { isObject } from "../../../../_shared/json.ts";
import type { Ask, NormalizedRequest, OnlyField } from "../../../contract.ts";
import { type ImageInfo, imageTokensOf, inspectInlineImage } from "../../../model/images.ts";
import { callOptionsFromHeaders } from "../../shared/call-options.ts";
import { IMAGE_FIELD_CODE, OUTPUT_CAP_CODE } from "../../../field-codes.ts";
import { checkMetadata, joinText } from "../../shared/request-rules.ts";
import type { ParseInput } from "../../shared/surface.ts";
import { invalid, unsupported } from "../checks.ts";
import { argumentsOf, imageOf } from "../messages.ts";
import { THINKING_BUDGETS } from "../request.ts";

const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const FUNCTION_NAME = /^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$/;
const MAX_ITEMS = 1000;
/** OpenAI's response ids: `resp_` and hex; the gateway's are `resp_` and its request id's hex. */
export const RESPONSE_ID = /^resp_[A-Za-z0-9_-]{1,100}$/;

/**
 * Fields only OpenAI's own Responses API honours. A model reached through the gateway's translation,
 * which has no word for them, refuses each by name when it asks for something.
 */
const OPENAI_ONLY: Record<string, { asks: (value: unknown) => boolean; why: string }> = {
  include: {
    asks: (v) => Array.isArray(v) && v.length > 0,
    why: "include names items OpenAI stores (file search results, encrypted reasoning, ...), which no model here returns",
  },
  background: { asks: (v) => v === true, why: "background responses are run and polled by OpenAI itself" },
  conversation: { asks: (v) => v !== null && v !== undefined, why: "OpenAI's conversations live at OpenAI; use previous_response_id" },
  prompt: { asks: (v) => v !== null && v !== undefined, why: "prompt templates are stored at OpenAI" },
  top_logprobs: { asks: (v) => typeof v === "number" && v > 0, why: "only OpenAI's models give log probabilities" },
  max_tool_calls: { asks: (v) => v !== null && v !== undefined, why: "a cap on built-in tool calls is OpenAI's only" },
};

const contentPartSchema = z.looseObject({ type: z.string() });
const messageItem = z.looseObject({
  type: z.literal("message").optional(),
  role: z.enum(["user", "assistant", "system", "developer"]),
  content: z.union([z.string(), z.array(contentPartSchema).max(MAX_ITEMS)]),
});
const functionCallItem = z.looseObject({
  type: z.literal("function_call"),
  call_id: z.string().min(1).max(256),
  name: z.string().min(1),
  arguments: z.string(),
});
const functionCallOutputItem = z.looseObject({
  type: z.literal("function_call_output"),
  call_id: z.string().min(1).max(256),
  output: z.union([z.string(), z.array(contentPartSchema).max(MAX_ITEMS)]),
});
// An earlier answer's reasoning, sent back with its output: said by the model, not a turn; left out.
const reasoningItem = z.looseObject({ type: z.literal("reasoning") });
const otherItem = z.looseObject({ type: z.string() });
const inputItem = z.union([messageItem, functionCallItem, functionCallOutputItem, reasoningItem, otherItem]);

const functionTool = z.looseObject({
  type: z.string(),
  name: z.string().regex(FUNCTION_NAME, "must be 1-64 characters of A-Z a-z 0-9 _ . : - (not starting with a digit)")
    .optional(),
  description: z.string().nullable().optional(),
  parameters: z.record(z.string(), z.unknown()).nullable().optional(),
  strict: z.boolean().nullable().optional(),
});

const toolChoice = z.union([
  z.enum(["none", "auto", "required"]),
  z.looseObject({ type: z.literal("function"), name: z.string() }),
  z.looseObject({
    type: z.literal("allowed_tools"),
    mode: z.enum(["auto", "required"]),
    tools: z.array(z.looseObject({ type: z.string(), name: z.string().optional() })).min(1),
  }),
  z.looseObject({ type: z.string() }),
]);

const textFormat = z.discriminatedUnion("type", [
  z.looseObject({ type: z.literal("text") }),
  z.looseObject({ type: z.literal("json_object") }),
  z.looseObject({
    type: z.literal("json_schema"),
    name: z.string().min(1).max(64),
    schema: z.record(z.string(), z.unknown()),
    description: z.string().optional(),
    strict: z.boolean().nullable().optional(),
  }),
]);

const responsesSchema = z.strictObject({
  model: z.string().transform((m) => m.replace(/^models\//, "")).pipe(
    z.string().regex(MODEL_NAME, "must be a model id such as gpt-4o"),
  ),
  input: z.union([z.string(), z.array(inputItem).max(MAX_ITEMS)]),
  instructions: z.string().nullable().optional(),
  tools: z.array(functionTool).max(128).optional(),
  tool_choice: toolChoice.optional(),
  parallel_tool_calls: z.boolean().nullable().optional(),
  text: z.looseObject({
    format: textFormat.optional(),
    verbosity: z.enum(["low", "medium", "high"]).nullable().optional(),
  }).nullable().optional(),
  max_output_tokens: z.number().int().min(1).max(1_000_000).nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().min(0).max(1).nullable().optional(),
  reasoning: z.looseObject({
    effort: z.enum(["none", "minimal", "low", "medium", "high"]).nullable().optional(),
    summary: z.string().nullable().optional(),
  }).nullable().optional(),
  metadata: z.record(z.string(), z.string().max(512)).nullable().optional(),
  stream: z.boolean().nullable().optional(),
  store: z.boolean().nullable().optional(),
  previous_response_id: z.string().regex(RESPONSE_ID, "must be a response id (resp_…)").nullable().optional(),
  // Accepted and ignored: they change nothing in what a model answers.
  user: z.string().optional(),
  safety_identifier: z.string().optional(),
  prompt_cache_key: z.string().optional(),
  service_tier: z.enum(["auto", "default", "scale", "flex", "priority"]).nullable().optional(),
  truncation: z.enum(["auto", "disabled"]).nullable().optional(),
  stream_options: z.looseObject({}).nullable().optional(),
  ...Object.fromEntries(Object.keys(OPENAI_ONLY).map((k) => [k, z.unknown().optional()])),
});

type ResponsesBody = z.infer<typeof responsesSchema>;

/** The request as the Responses surface runs it: the gateway's, and what only this surface reads back. */
export interface ResponsesRequest extends NormalizedRequest {
  responses: {
    /** Keep the conversation for a later previous_response_id (the gateway's default: true, as OpenAI's). */
    store: boolean;
    previousResponseId: string | null;
    /** Function outputs whose call is in the stored conversation: named once it is read (`joinStored`). */
    unpaired: Array<{ at: string; callId: string }>;
    /** The body's fields the answer echoes (instructions, tools, tool_choice, temperature, ...). */
    echo: Record<string, unknown>;
  };
}

export function parseResponses(input: ParseInput): ResponsesRequest {
  const body = input.body;
  if (!isObject(body)) throw new GatewayError("invalid_json", "The body must be a JSON object.");
  const parsed = responsesSchema.safeParse(body);
  if (!parsed.success) throw invalidRequest(parsed.error);
  const req = parsed.data;
  // A request that continues a stored conversation is translated for every model (OpenAI holds none of
  // the gateway's conversations): OpenAI's own fields are refused then. Else a model whose provider
  // has the Responses API is sent the body as it came, and every other model refuses them, by name.
  const passThrough = req.previous_response_id === undefined || req.previous_response_id === null;
  const asked = Object.keys(OPENAI_ONLY).filter((field) => field in body && OPENAI_ONLY[field]!.asks(body[field]));
  if (!passThrough && asked.length > 0) throw unsupported(asked[0]!, OPENAI_ONLY[asked[0]!]!.why);

  const options = callOptionsFromHeaders(input.headers, input.limits);
  const metadata = req.metadata ?? {};
  checkMetadata(metadata, input.limits);
  const previous = req.previous_response_id ?? null;
  const { messages, system, images, unpaired } = itemsOf(req.input, previous !== null);
  const { only: builtIn, ...tools } = toolsOf(req, passThrough);
  const only = [...asked.map((field) => ({ field, why: OPENAI_ONLY[field]!.why })), ...builtIn];

  return {
    model: req.model,
    ...options,
    messages,
    ...(joinText([req.instructions ?? undefined, system]) === undefined
      ? {}
      : { system: joinText([req.instructions ?? undefined, system])! }),
    options: optionsOf(req),
    ...tools,
    asks: asksOf(req, tools.tools !== undefined),
    outputCapField: { words: "max_output_tokens", code: OUTPUT_CAP_CODE },
    optionFields: { temperature: "temperature", topP: "top_p", thinkingBudget: "reasoning.effort" },
    imageTokens: imageTokensOf(images),
    stream: req.stream === true,
    metadata,
    ...(passThrough ? { dialectBody: { dialect: "openai", body, endpoint: "responses" } } : {}),
    ...(only.length === 0 ? {} : { only: { dialect: "openai", endpoint: "responses", fields: only } }),
    responses: {
      store: req.store !== false,
      previousResponseId: previous,
      unpaired,
      echo: {
        instructions: req.instructions ?? null,
        metadata,
        tools: req.tools ?? [],
        tool_choice: req.tool_choice ?? "auto",
        parallel_tool_calls: req.parallel_tool_calls ?? true,
        temperature: req.temperature ?? null,
        top_p: req.top_p ?? null,
        max_output_tokens: req.max_output_tokens ?? null,
        previous_response_id: previous,
        text: { format: req.text?.format ?? { type: "text" } },
        reasoning: { effort: req.reasoning?.effort ?? null, summary: null },
        store: req.store !== false,
      },
    },
  };
}

interface Items {
  messages: HubMessage[];
  system?: string;
  images: ImageInfo[];
  unpaired: Array<{ at: string; callId: string }>;
}

/** `input` as the hub's turns: consecutive items of one role make one turn, as a chat's messages do. */
function itemsOf(input: ResponsesBody["input"], continues: boolean): Items {
  if (typeof input === "string") {
    if (input.trim() === "") throw emptyInput("input");
    return { messages: [{ role: "user", parts: [{ type: "text", text: input }] }], images: [], unpaired: [] };
  }
  const system: string[] = [];
  const messages: HubMessage[] = [];
  const images: ImageInfo[] = [];
  const unpaired: Items["unpaired"] = [];
  const calls = new Map<string, string>();
  const add = (role: HubMessage["role"], part: HubPart) => {
    const last = messages.at(-1);
    if (last?.role === role) last.parts.push(part);
    else messages.push({ role, parts: [part] });
  };

  input.forEach((item, i) => {
    const at = `input[${i}]`;
    const type = (item as { type?: unknown }).type ?? "message";
    if (type === "reasoning") return;
    if (type === "message") {
      const message = messageItem.safeParse(item);
      if (!message.success) throw invalidRequest(message.error, `${at} is a message: {role, content}.`);
      const { role, content } = message.data;
      if (role === "system" || role === "developer") {
        system.push(typeof content === "string" ? content : content.map((p, j) => textPart(p, `${at}.content[${j}]`)).join(""));
        return;
      }
      const hubRole = role === "assistant" ? "assistant" : "user";
      const parts: HubPart[] = typeof content === "string"
        ? [{ type: "text", text: content }]
        : content.map((p, j) => contentPart(p, `${at}.content[${j}]`, images));
      const said = parts.filter((p) => p.type !== "text" || p.text.trim() !== "");
      if (said.length === 0) throw emptyInput(at);
      for (const part of said) add(hubRole, part);
      return;
    }
    if (type === "function_call") {
      const call = functionCallItem.parse(item);
      calls.set(call.call_id, call.name);
      add("assistant", {
        type: "tool_call",
        id: call.call_id,
        name: call.name,
        args: argumentsOf(call.arguments, `${at}.arguments`),
      });
      return;
    }
    if (type === "function_call_output") {
      const output = functionCallOutputItem.safeParse(item);
      if (!output.success) throw invalidRequest(output.error);
      const name = calls.get(output.data.call_id);
      if (name === undefined && !continues) {
        throw invalid(`${at}.call_id`, "names no function_call of the input (nor of a previous_response_id).");
      }
      if (name === undefined) unpaired.push({ at: `${at}.call_id`, callId: output.data.call_id });
      const text = typeof output.data.output === "string"
        ? output.data.output
        : output.data.output.map((p, j) => textPart(p, `${at}.output[${j}]`)).join("");
      add("user", {
        type: "tool_result",
        id: output.data.call_id,
        name: name ?? "",
        result: text,
      });
      return;
    }
    throw unsupported(
      `${at}.type`,
      `only message, function_call, function_call_output and reasoning items are offered (got ${
        sanitize(String(type), { maxLength: 40 })
      })`,
    );
  });
  if (messages.length === 0 && !continues) throw emptyInput("input");
  const joined = joinText(system);
  return { messages, ...(joined === undefined ? {} : { system: joined }), images, unpaired };
}

function textPart(part: Record<string, unknown>, at: string): string {
  if ((part.type === "input_text" || part.type === "output_text") && typeof part.text === "string") return part.text;
  throw invalid(at, "must be a text part ({type: input_text, text}).");
}

function contentPart(part: Record<string, unknown>, at: string, images: ImageInfo[]): HubPart {
  if (part.type === "input_text" || part.type === "output_text") return { type: "text", text: textPart(part, at) };
  if (part.type === "refusal" && typeof part.refusal === "string") return { type: "text", text: part.refusal };
  if (part.type === "input_image") {
    if (part.file_id !== undefined && part.file_id !== null) {
      throw unsupported(`${at}.file_id`, "files are stored at OpenAI; send the image as a data URL in image_url");
    }
    const image = imageOf({ url: part.image_url }, at);
    images.push(inspectInlineImage(image, `${at}.image_url`, `${at}.${IMAGE_FIELD_CODE}`));
    return { type: "media", ...image };
  }
  throw unsupported(
    `${at}.type`,
    `only input_text and input_image parts are offered (got ${sanitize(String(part.type), { maxLength: 40 })})`,
  );
}

function emptyInput(field: string): GatewayError {
  return new GatewayError("empty_input", `${field} has no content.`, { details: { field } });
}

/**
 * Function tools in the hub's words; a built-in tool (web_search, file_search, ...) is OpenAI's only:
 * listed for an OpenAI model to take as given (`passThrough`), else refused.
 */
function toolsOf(
  req: ResponsesBody,
  passThrough: boolean,
): { tools?: HubTool[]; toolChoice?: HubToolChoice; only: OnlyField[] } {
  const only: OnlyField[] = [];
  const tools: HubTool[] = (req.tools ?? []).flatMap((tool, i) => {
    if (tool.type !== "function") {
      const why = `${sanitize(tool.type, { maxLength: 40 })} is a tool OpenAI runs itself`;
      if (!passThrough) throw unsupported(`tools[${i}].type`, `${why}; only function tools continue a stored response`);
      only.push({ field: `tools[${i}].type`, why });
      return [];
    }
    if (tool.name === undefined) throw invalid(`tools[${i}].name`, "a function tool needs its name.");
    return [{
      name: tool.name,
      ...(tool.description === undefined || tool.description === null ? {} : { description: tool.description }),
      ...(tool.parameters === undefined || tool.parameters === null ? {} : { parameters: tool.parameters }),
    }];
  });
  const names = tools.map((t) => t.name);
  const given = { ...(tools.length === 0 ? {} : { tools }), only };
  const choice = req.tool_choice;
  if (choice === undefined || choice === "auto") return given;
  if (choice === "none") return { ...given, toolChoice: { mode: "none" } };
  const known = (name: unknown, field: string): string => {
    if (typeof name !== "string" || !names.includes(name)) {
      throw invalid(field, `${sanitize(String(name), { maxLength: 64 })} is not one of tools.`);
    }
    return name;
  };
  if (names.length === 0 && only.length > 0) return given;
  if (names.length === 0) throw invalid("tool_choice", "asks for a tool call but the request has no tools.");
  if (choice === "required") return { ...given, toolChoice: { mode: "required" } };
  if (choice.type === "function") {
    return { ...given, toolChoice: { mode: "required", only: [known(choice.name, "tool_choice.name")] } };
  }
  if (choice.type === "allowed_tools" && choice.mode === "required" && Array.isArray(choice.tools)) {
    const only = (choice.tools as Array<{ name?: unknown }>).map((t, i) => known(t.name, `tool_choice.tools[${i}]`));
    return { ...given, toolChoice: { mode: "required", only } };
  }
  if (passThrough) {
    return { ...given, only: [...only, { field: "tool_choice", why: "this tool choice is OpenAI's models' only" }] };
  }
  throw unsupported("tool_choice", "only none, auto, required, a function, or allowed_tools in mode required are offered");
}

function asksOf(req: ResponsesBody, tools: boolean): NormalizedRequest["asks"] {
  const format = req.text?.format?.type;
  const json: Ask | undefined = format === "json_object" || format === "json_schema"
    ? { feature: "responseMimeType", words: `text.format ${format}` }
    : undefined;
  return {
    ...(json === undefined ? {} : { json }),
    ...(tools ? { tools: { feature: "tools", words: "tools (function calling)" } } : {}),
  };
}

function optionsOf(req: ResponsesBody): HubOptions {
  const options: HubOptions = {};
  if (req.max_output_tokens !== null && req.max_output_tokens !== undefined) options.maxOutputTokens = req.max_output_tokens;
  if (req.temperature !== null && req.temperature !== undefined) options.temperature = req.temperature;
  if (req.top_p !== null && req.top_p !== undefined) options.topP = req.top_p;
  const format = req.text?.format;
  if (format?.type === "json_object") options.format = { type: "json" };
  if (format?.type === "json_schema") options.format = { type: "json", schema: format.schema };
  const effort = req.reasoning?.effort;
  if (effort !== null && effort !== undefined) options.thinking = { budgetTokens: THINKING_BUDGETS[effort] };
  return options;
}
