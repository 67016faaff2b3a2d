// A HubRequest (../../upstream/hub.ts) as Anthropic's Messages body (docs/anthropic.md): the system
// apart, turns of content blocks (text, a signed thinking block sent back, image/document, tool_use,
// tool_result), tools with their input_schema, tool_choice, thinking with its budget, stop sequences.
// `max_tokens` is required by Anthropic: the caller's, else the output the gateway booked for the call
// (the model row's booked answer), else DEFAULT_MAX_TOKENS. A JSON answer is asked as a forced call of
// one tool whose input_schema is the schema (JSON_TOOL): its input comes back as the answer's text
// (response.ts), which holds on every API version. A caller's own Anthropic body (dialectBody) is sent
// as it came, only model, stream and max_tokens set.
import {
  type DialectBody,
  type HubMessage,
  type HubPart,
  type HubRequest,
  type HubSchema,
  type HubTool,
  toolResultText,
} from "../../upstream/hub.ts";
import { isObject } from "../../json.ts";

export type Json = Record<string, unknown>;

/** The dialect's name: a provider row's `dialect`, the pass-through's tag. */
export const ANTHROPIC = "anthropic";

/** max_tokens when neither the caller nor the model row names one. */
export const DEFAULT_MAX_TOKENS = 4096;

/** The tool a JSON answer is asked through (its input is the answer). */
export const JSON_TOOL = "json_answer";

/** Anthropic's least thinking budget. */
const MIN_THINKING_BUDGET = 1024;

/** A request Anthropic cannot be asked (several alternative answers): the caller's error, said before any call. */
export class AnthropicRequestError extends Error {}

/** The hub's schema (JSON Schema) as an input_schema, which must be an object's. */
export function inputSchemaOf(schema: HubSchema | undefined): Json {
  return isObject(schema) ? schema : { type: "object" };
}

/**
 * Tool call ids: the hub's where it has them, else made up and paired with the result that follows
 * (by name, in order), as Anthropic requires every tool_result to name its tool_use.
 */
class ToolIds {
  private pending = new Map<string, string[]>();
  private n = 0;

  call(part: Extract<HubPart, { type: "tool_call" }>): string {
    const id = part.id ?? `toolu_gw${(++this.n).toString().padStart(4, "0")}`;
    const queue = this.pending.get(part.name) ?? [];
    queue.push(id);
    this.pending.set(part.name, queue);
    return id;
  }

  result(part: Extract<HubPart, { type: "tool_result" }>): string {
    const queue = this.pending.get(part.name) ?? [];
    const id = part.id ?? queue[0] ?? `toolu_gw_${part.name}`;
    const at = queue.indexOf(id);
    if (at >= 0) queue.splice(at, 1);
    return id;
  }
}

function block(part: HubPart, ids: ToolIds): Json | null {
  switch (part.type) {
    case "text":
      if (part.thought === true) {
        // A thought goes back only with its signature (Anthropic checks it); an unsigned one is left out.
        return part.signature === undefined
          ? null
          : { type: "thinking", thinking: part.text, signature: part.signature };
      }
      return part.text === "" ? null : { type: "text", text: part.text };
    case "media":
      return {
        type: part.mimeType === "application/pdf" ? "document" : "image",
        source: { type: "base64", media_type: part.mimeType, data: part.data },
      };
    case "tool_call":
      return { type: "tool_use", id: ids.call(part), name: part.name, input: part.args };
    case "tool_result":
      return {
        type: "tool_result",
        tool_use_id: ids.result(part),
        content: toolResultText(part),
        ...(part.error === true ? { is_error: true } : {}),
      };
  }
}

function messagesOf(messages: HubMessage[]): Json[] {
  const ids = new ToolIds();
  const out: Json[] = [];
  for (const m of messages) {
    const content = m.parts.map((p) => block(p, ids)).filter((b): b is Json => b !== null);
    if (content.length === 0) continue;
    const role = m.role;
    const last = out.at(-1);
    // Anthropic's turns alternate: two turns of one side in a row become one.
    if (last !== undefined && last.role === role) (last.content as Json[]).push(...content);
    else out.push({ role, content });
  }
  return out;
}

function toolOf(tool: HubTool): Json {
  return {
    name: tool.name,
    ...(tool.description === undefined ? {} : { description: tool.description }),
    input_schema: tool.parameters === undefined ? { type: "object", properties: {} } : inputSchemaOf(tool.parameters),
  };
}

/** The max_tokens a call sends: the caller's cap, else the booked answer, else the default. */
export function maxTokensOf(request: Pick<HubRequest, "options">, booked: number | undefined): number {
  return request.options.maxOutputTokens ?? booked ?? DEFAULT_MAX_TOKENS;
}

/** Whether the answer was asked as JSON through JSON_TOOL (response.ts then reads its input as the text). */
export function asksJson(request: HubRequest): boolean {
  return request.dialectBody?.dialect !== ANTHROPIC && request.options.format?.type === "json";
}

/** The Messages body for a HubRequest; `booked`: the output tokens the gateway booked when the caller named none. */
export function messagesBody(request: HubRequest, stream: boolean, booked?: number): Json {
  const maxTokens = maxTokensOf(request, booked);
  // A body of another dialect (a caller's, for its own provider) is not Anthropic's to send.
  if (request.dialectBody?.dialect === ANTHROPIC) {
    return passThrough(request.dialectBody, request, stream, maxTokens);
  }
  const o = request.options;
  if ((o.outputCount ?? 1) > 1) {
    throw new AnthropicRequestError("Anthropic answers one alternative per request (asked: " + o.outputCount + ").");
  }
  const body: Json = { model: request.model, max_tokens: maxTokens, messages: messagesOf(request.messages) };
  if (request.system !== undefined && request.system !== "") body.system = request.system;
  if (o.temperature !== undefined) body.temperature = o.temperature;
  if (o.topP !== undefined) body.top_p = o.topP;
  if (o.topK !== undefined) body.top_k = o.topK;
  if (o.stop !== undefined && o.stop.length > 0) body.stop_sequences = o.stop;
  const budget = fittedBudget(o.thinking?.budgetTokens, maxTokens);
  if (budget !== undefined) body.thinking = { type: "enabled", budget_tokens: budget };
  const tools = (request.tools ?? []).map(toolOf);
  const choice = request.toolChoice;
  if (choice !== undefined && tools.length > 0) {
    if (choice.mode === "none") body.tool_choice = { type: "none" };
    else if (choice.mode === "auto") body.tool_choice = { type: "auto" };
    else if (choice.only !== undefined && choice.only.length === 1) {
      body.tool_choice = { type: "tool", name: choice.only[0] };
    } else body.tool_choice = { type: "any" };
  }
  if (o.format?.type === "json") {
    tools.push({
      name: JSON_TOOL,
      description: "Give the answer as this tool's input.",
      input_schema: inputSchemaOf(o.format.schema),
    });
    // Forced unless the caller's own tools may be called (then the model chooses).
    if (body.tool_choice === undefined || tools.length === 1) body.tool_choice = { type: "tool", name: JSON_TOOL };
  }
  if (tools.length > 0) body.tools = tools;
  if (stream) body.stream = true;
  return body;
}

/**
 * A thinking budget as Anthropic takes it: at least 1024 and below max_tokens (within what was
 * booked); undefined: no thinking (none asked, 0, or no room under max_tokens).
 */
function fittedBudget(budget: number | undefined, maxTokens: number): number | undefined {
  if (budget === undefined || budget <= 0) return undefined;
  const fitted = Math.min(Math.max(budget, MIN_THINKING_BUDGET), maxTokens - 1);
  return fitted >= MIN_THINKING_BUDGET ? fitted : undefined;
}

/**
 * The caller's own Anthropic body: sent as it came, but for the fields the gateway sets — the model
 * booked, the stream, max_tokens (the gateway's cap where it set one, else the body's, else the booked
 * answer) and thinking's budget (the gateway's, fitted below that max_tokens, else no thinking).
 */
function passThrough(own: DialectBody, request: HubRequest, stream: boolean, booked: number): Json {
  const body: Json = { ...own.body, model: request.model };
  const maxTokens = request.options.maxOutputTokens ??
    (typeof body.max_tokens === "number" ? body.max_tokens : booked);
  body.max_tokens = maxTokens;
  const thinking = body.thinking;
  if (isObject(thinking) && thinking.type === "enabled") {
    const asked = request.options.thinking?.budgetTokens ??
      (typeof thinking.budget_tokens === "number" ? thinking.budget_tokens : undefined);
    const budget = fittedBudget(asked, maxTokens);
    if (budget === undefined) delete body.thinking;
    else body.thinking = { ...thinking, budget_tokens: budget };
  }
  if (stream) body.stream = true;
  else delete body.stream;
  return body;
}
