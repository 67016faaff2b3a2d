// The gateway's one request (Gemini's contents, system instruction, generationConfig, tools) as an
// OpenAI Chat Completions body, for a model an OpenAI organization serves. Every surface reaches it:
// the gateway's JSON route, Google's routes and OpenAI's own. What Chat Completions has no field for
// (safetySettings, topK, thinking budgets) is not sent; the answer is still the model's. Gemini's
// schemas are sent as JSON Schema (schema.ts). The gateway's service tier (flex, priority) is sent as
// service_tier unless the caller's own body names one.
import type { Content, Part, UpstreamRequest } from "../../upstream/shapes.ts";
import { jsonSchemaOf, responseFormatSchema } from "./schema.ts";

type Message = Record<string, unknown>;

/**
 * Fields of a caller's own body the gateway sets itself: the model booked, whether it streams (with the
 * usage chunk, which the books need; the caller's other stream options kept), the token cap (a scoped token's may be lower than asked); and
 * `metadata`, which is the gateway's audit record, not OpenAI's stored-completion tags.
 */
const GATEWAY_FIELDS = ["model", "stream", "stream_options", "max_tokens", "max_completion_tokens", "metadata"];

/** The Chat Completions body for `request` (its model is the one booked). */
export function chatCompletionBody(request: UpstreamRequest, stream: boolean): Record<string, unknown> {
  if (request.dialectBody?.dialect === "openai") return callersBody(request, request.dialectBody.body, stream);
  const messages: Message[] = [];
  if (request.systemInstruction !== undefined && request.systemInstruction !== "") {
    messages.push({ role: "system", content: request.systemInstruction });
  }
  const ids = new CallIds();
  for (const content of request.contents) messages.push(...messagesOf(content, ids));
  const fields = sampling(request.generationConfig);
  // OpenAI refuses json_object unless a message says "json"; Gemini asks no such word of the caller.
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
function tierField(request: UpstreamRequest): Record<string, unknown> {
  return request.serviceTier === undefined || request.serviceTier === "standard"
    ? {}
    : { service_tier: request.serviceTier };
}

/** A message's words: its text, or its text parts' (never an image's data, where "json" may occur by chance). */
function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content.map((part) =>
    typeof part === "object" && part !== null && (part as { type?: unknown }).type === "text"
      ? String((part as { text?: unknown }).text ?? "")
      : ""
  ).join(" ");
}

/** The JSON Schema of the answer asked for (Gemini's responseJsonSchema, else its responseSchema); undefined: none. */
function answerSchema(config: UpstreamRequest["generationConfig"]): unknown {
  if (config.responseJsonSchema !== undefined) return config.responseJsonSchema;
  return config.responseSchema === undefined ? undefined : jsonSchemaOf(config.responseSchema);
}

/** Whether OpenAI's answer comes wrapped in an object (the schema asked for is not an object's): schema.ts. */
export function answerWrapped(request: UpstreamRequest): boolean {
  if (request.dialectBody?.dialect === "openai") return false;
  const schema = answerSchema(request.generationConfig);
  return schema !== undefined && responseFormatSchema(schema).wrapped;
}

/** OpenAI's route: the caller's body as sent, but for the fields the gateway sets. */
function callersBody(
  request: UpstreamRequest,
  body: Record<string, unknown>,
  stream: boolean,
): Record<string, unknown> {
  const own = Object.fromEntries(Object.entries(body).filter(([field]) => !GATEWAY_FIELDS.includes(field)));
  const cap = request.generationConfig.maxOutputTokens;
  // The caller's other stream options (include_obfuscation) stand; the usage chunk is always asked.
  const options = typeof body.stream_options === "object" && body.stream_options !== null
    ? body.stream_options
    : {};
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
 * Tool-call ids: OpenAI pairs a tool message with its call by id, Gemini by name and order. A part's
 * own id is kept; a call without one gets the next of its name, which its response then takes.
 */
class CallIds {
  private n = 0;
  private readonly open = new Map<string, string[]>();
  call(part: Part["functionCall"] & object): string {
    const id = part.id ?? `call_${++this.n}`;
    this.open.set(part.name, [...(this.open.get(part.name) ?? []), id]);
    return id;
  }
  response(part: Part["functionResponse"] & object): string {
    if (part.id !== undefined) return part.id;
    const waiting = this.open.get(part.name) ?? [];
    return waiting.shift() ?? `call_${++this.n}`;
  }
}

function messagesOf(content: Content, ids: CallIds): Message[] {
  if (content.role === "model") {
    const text = content.parts.filter((p) => typeof p.text === "string" && p.thought !== true)
      .map((p) => p.text).join("");
    const calls = content.parts.filter((p) => p.functionCall !== undefined).map((p) => ({
      id: ids.call(p.functionCall!),
      type: "function",
      function: { name: p.functionCall!.name, arguments: JSON.stringify(p.functionCall!.args ?? {}) },
    }));
    return [{
      role: "assistant",
      content: text === "" && calls.length > 0 ? null : text,
      ...(calls.length > 0 ? { tool_calls: calls } : {}),
    }];
  }
  const out: Message[] = [];
  const userParts: Record<string, unknown>[] = [];
  for (const part of content.parts) {
    if (part.functionResponse !== undefined) {
      out.push({
        role: "tool",
        tool_call_id: ids.response(part.functionResponse),
        content: JSON.stringify(part.functionResponse.response ?? {}),
      });
    } else if (typeof part.text === "string") {
      userParts.push({ type: "text", text: part.text });
    } else if (part.inlineData !== undefined) {
      const url = `data:${part.inlineData.mimeType};base64,${part.inlineData.data}`;
      userParts.push({ type: "image_url", image_url: { url } });
    }
  }
  if (userParts.length > 0) {
    const onlyText = userParts.every((p) => p.type === "text");
    out.push({ role: "user", content: onlyText ? userParts.map((p) => p.text).join("") : userParts });
  }
  return out;
}

/** generationConfig's fields that Chat Completions has. */
function sampling(config: UpstreamRequest["generationConfig"]): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (config.temperature !== undefined) body.temperature = config.temperature;
  if (config.topP !== undefined) body.top_p = config.topP;
  if (config.maxOutputTokens !== undefined) body.max_completion_tokens = config.maxOutputTokens;
  if (config.stopSequences !== undefined) body.stop = config.stopSequences;
  if (config.candidateCount !== undefined) body.n = config.candidateCount;
  if (config.seed !== undefined) body.seed = config.seed;
  if (config.presencePenalty !== undefined) body.presence_penalty = config.presencePenalty;
  if (config.frequencyPenalty !== undefined) body.frequency_penalty = config.frequencyPenalty;
  const schema = answerSchema(config);
  if (schema !== undefined) {
    const asked = responseFormatSchema(schema).schema;
    body.response_format = { type: "json_schema", json_schema: { name: "response", schema: asked } };
  } else if (config.responseMimeType === "application/json") {
    body.response_format = { type: "json_object" };
  }
  return body;
}

interface Declaration {
  name: string;
  description?: string;
  parameters?: unknown;
  parametersJsonSchema?: unknown;
}

/** Gemini's function declarations and calling mode as OpenAI's tools and tool_choice. */
function toolFields(request: UpstreamRequest): Record<string, unknown> {
  const declarations = (request.tools ?? []).flatMap((tool) => {
    const list = (tool as { functionDeclarations?: unknown }).functionDeclarations;
    return Array.isArray(list) ? list as Declaration[] : [];
  });
  if (declarations.length === 0) return {};
  const tools = declarations.map((d) => ({
    type: "function",
    function: {
      name: d.name,
      ...(d.description === undefined ? {} : { description: d.description }),
      ...(d.parametersJsonSchema ?? d.parameters) === undefined
        ? {}
        : { parameters: d.parametersJsonSchema ?? jsonSchemaOf(d.parameters) },
    },
  }));
  const calling = (request.toolConfig?.functionCallingConfig ?? {}) as {
    mode?: string;
    allowedFunctionNames?: string[];
  };
  const allowed = calling.allowedFunctionNames ?? [];
  const choice = calling.mode === "NONE"
    ? "none"
    : calling.mode === "ANY" && allowed.length === 1
    ? { type: "function", function: { name: allowed[0] } }
    : calling.mode === "ANY"
    ? "required"
    : undefined;
  return { tools, ...(choice === undefined ? {} : { tool_choice: choice }) };
}
