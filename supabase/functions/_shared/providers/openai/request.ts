// The hub's request (../../upstream/hub.ts: messages, system, options, tools) as an OpenAI Chat
// Completions body, for a model an OpenAI organization serves. Every surface reaches it: the gateway's
// JSON route, Google's routes and OpenAI's own. What Chat Completions has no field for (topK, thinking
// budgets) is not sent; the answer is still the model's. Schemas are the hub's JSON Schema, sent as
// they are. The gateway's service tier (flex, priority) is sent as service_tier unless
// the caller's own body names one.
import {
  type HubMessage,
  type HubOptions,
  type HubRequest,
  type HubToolCallPart,
  type HubToolResultPart,
  toolResultText,
} from "../../upstream/hub.ts";
import { responseFormatSchema } from "./schema.ts";
import { isObject } from "../../json.ts";

type Message = Record<string, unknown>;

/**
 * Fields of a caller's own body the gateway sets itself: the model booked, whether it streams (with the
 * usage chunk, which the books need; the caller's other stream options kept), the token cap (a scoped token's may be lower than asked); and
 * `metadata`, which is the gateway's audit record, not OpenAI's stored-completion tags.
 */
const GATEWAY_FIELDS = ["model", "stream", "stream_options", "max_tokens", "max_completion_tokens", "metadata"];

/** The Chat Completions body for `request` (its model is the one booked). */
export function chatCompletionBody(request: HubRequest, stream: boolean): Record<string, unknown> {
  if (request.dialectBody?.dialect === "openai") return callersBody(request, request.dialectBody.body, stream);
  const messages: Message[] = [];
  if (request.system !== undefined && request.system !== "") {
    messages.push({ role: "system", content: request.system });
  }
  const ids = new CallIds();
  for (const message of request.messages) messages.push(...messagesOf(message, ids));
  const fields = sampling(request.options);
  // OpenAI refuses json_object unless a message says "json"; the other routes ask no such word of the caller.
  const format = fields.response_format as { type?: string } | undefined;
  if (format?.type === "json_object" && !messages.some((m) => /json/i.test(textOf(m.content)))) {
    messages.splice(messages[0]?.role === "system" ? 1 : 0, 0, { role: "system", content: "Answer in JSON." });
  }
  return {
    model: request.model,
    messages,
    ...fields,
    ...toolFields(request),
    ...tierField(request),
    ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
  };
}

/** The gateway's tier as OpenAI's service_tier (standard is OpenAI's default: nothing sent). */
function tierField(request: HubRequest): Record<string, unknown> {
  return request.serviceTier === undefined || request.serviceTier === "standard"
    ? {}
    : { service_tier: request.serviceTier };
}

/** A message's words: its text, or its text parts' (never an image's data, where "json" may occur by chance). */
function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content.map((part) =>
    isObject(part) && part.type === "text"
      ? String(part.text ?? "")
      : ""
  ).join(" ");
}

/** The JSON Schema of the answer asked for; undefined: none. */
function answerSchema(options: HubOptions): unknown {
  return options.format?.type === "json" ? options.format.schema : undefined;
}

/** Whether OpenAI's answer comes wrapped in an object (the schema asked for is not an object's): schema.ts. */
export function answerWrapped(request: HubRequest): boolean {
  if (request.dialectBody?.dialect === "openai") return false;
  const schema = answerSchema(request.options);
  return schema !== undefined && responseFormatSchema(schema).wrapped;
}

/** OpenAI's route: the caller's body as sent, but for the fields the gateway sets. */
function callersBody(
  request: HubRequest,
  body: Record<string, unknown>,
  stream: boolean,
): Record<string, unknown> {
  const own = Object.fromEntries(Object.entries(body).filter(([field]) => !GATEWAY_FIELDS.includes(field)));
  const cap = request.options.maxOutputTokens;
  // The caller's other stream options (include_obfuscation) stand; the usage chunk is always asked.
  const options = isObject(body.stream_options) ? body.stream_options : {};
  // The caller's own service_tier stands (the gateway's word "standard" is OpenAI's "default"); where it
  // names none, the gateway's tier is sent.
  const { service_tier: asked, ...rest } = own;
  return {
    ...rest,
    ...(asked === undefined || asked === null
      ? tierField(request)
      : { service_tier: asked === "standard" ? "default" : asked }),
    model: request.model,
    ...(cap === undefined ? {} : { max_completion_tokens: cap }),
    ...(stream ? { stream: true, stream_options: { ...options, include_usage: true } } : {}),
  };
}

/**
 * Tool-call ids: OpenAI pairs a tool message with its call by id, the hub by id where the caller gave
 * one, else by name and order. A part's own id is kept; a call without one gets the next of its name,
 * which its result then takes.
 */
class CallIds {
  private n = 0;
  private readonly open = new Map<string, string[]>();
  call(part: HubToolCallPart): string {
    const id = part.id ?? `call_${++this.n}`;
    this.open.set(part.name, [...(this.open.get(part.name) ?? []), id]);
    return id;
  }
  result(part: HubToolResultPart): string {
    if (part.id !== undefined) return part.id;
    const waiting = this.open.get(part.name) ?? [];
    return waiting.shift() ?? `call_${++this.n}`;
  }
}

function messagesOf(message: HubMessage, ids: CallIds): Message[] {
  if (message.role === "assistant") {
    let text = "";
    const calls: Message[] = [];
    for (const p of message.parts) {
      if (p.type === "text" && p.thought !== true) text += p.text;
      if (p.type === "tool_call") {
        calls.push({ id: ids.call(p), type: "function", function: { name: p.name, arguments: JSON.stringify(p.args) } });
      }
    }
    return [{
      role: "assistant",
      content: text === "" && calls.length > 0 ? null : text,
      ...(calls.length > 0 ? { tool_calls: calls } : {}),
    }];
  }
  const out: Message[] = [];
  const userParts: Record<string, unknown>[] = [];
  for (const part of message.parts) {
    if (part.type === "tool_result") {
      out.push({ role: "tool", tool_call_id: ids.result(part), content: toolResultText(part) });
    } else if (part.type === "text") {
      userParts.push({ type: "text", text: part.text });
    } else if (part.type === "media") {
      userParts.push({ type: "image_url", image_url: { url: `data:${part.mimeType};base64,${part.data}` } });
    }
  }
  if (userParts.length > 0) {
    const onlyText = userParts.every((p) => p.type === "text");
    out.push({ role: "user", content: onlyText ? userParts.map((p) => p.text).join("") : userParts });
  }
  return out;
}

/** The hub's options that Chat Completions has. */
function sampling(options: HubOptions): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (options.temperature !== undefined) body.temperature = options.temperature;
  if (options.topP !== undefined) body.top_p = options.topP;
  if (options.maxOutputTokens !== undefined) body.max_completion_tokens = options.maxOutputTokens;
  if (options.stop !== undefined) body.stop = options.stop;
  if (options.outputCount !== undefined) body.n = options.outputCount;
  if (options.seed !== undefined) body.seed = options.seed;
  if (options.presencePenalty !== undefined) body.presence_penalty = options.presencePenalty;
  if (options.frequencyPenalty !== undefined) body.frequency_penalty = options.frequencyPenalty;
  const schema = answerSchema(options);
  if (schema !== undefined) {
    const asked = responseFormatSchema(schema).schema;
    body.response_format = { type: "json_schema", json_schema: { name: "response", schema: asked } };
  } else if (options.format?.type === "json") {
    body.response_format = { type: "json_object" };
  }
  return body;
}

/** The hub's tools and tool choice as OpenAI's tools and tool_choice. */
function toolFields(request: HubRequest): Record<string, unknown> {
  if (request.tools === undefined || request.tools.length === 0) return {};
  const tools = request.tools.map((t) => {
    const parameters = t.parameters;
    return {
      type: "function",
      function: {
        name: t.name,
        ...(t.description === undefined ? {} : { description: t.description }),
        ...(parameters === undefined ? {} : { parameters }),
      },
    };
  });
  const choice = request.toolChoice;
  const only = choice?.mode === "required" ? choice.only ?? [] : [];
  const toolChoice = choice?.mode === "none"
    ? "none"
    : choice?.mode === "required" && only.length === 1
    ? { type: "function", function: { name: only[0] } }
    : choice?.mode === "required"
    ? "required"
    : undefined;
  return { tools, ...(toolChoice === undefined ? {} : { tool_choice: toolChoice }) };
}
