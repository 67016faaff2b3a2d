// A Messages body (Anthropic's) → the gateway's one request in the hub's words: turns of content blocks
// as messages (text, base64 images and PDFs, tool_use as a tool call, tool_result as its result paired
// by id, a signed thinking block as a signed thought), the system apart, max_tokens, sampling, stop
// sequences, thinking's budget, tools and tool_choice. The body itself rides along as the dialect's
// (dialectBody): a Claude model is sent it as it came (cache_control, citations, server tools and
// every field Anthropic offers reach it); another provider's model refuses the fields only Anthropic's
// models honour, naming them. docs/anthropic.md says what maps to what.
import { z } from "zod";
import { GatewayError } from "../../../_shared/errors.ts";
import { invalidRequest } from "../../../_shared/validation.ts";
import type { HubMessage, HubOptions, HubPart, HubTool, HubToolChoice } from "../../../_shared/upstream/hub.ts";
import type { NormalizedRequest, OnlyField } from "../../contract.ts";
import { IMAGE_FIELD_CODE, OUTPUT_CAP_CODE } from "../../field-codes.ts";
import { type ImageInfo, imageTokensOf, inspectInlineImage } from "../../model/images.ts";
import { callOptionsFromHeaders } from "../shared/call-options.ts";
import type { ParseInput } from "../shared/surface.ts";
import { isObject } from "../../../_shared/json.ts";

const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const FUNCTION_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;

const block = z.looseObject({ type: z.string() });
const content = z.union([z.string(), z.array(block).max(1000)]);

const messagesSchema = z.looseObject({
  model: z.string().regex(MODEL_NAME, "must be a model id such as claude-sonnet-5-5"),
  max_tokens: z.number().int().min(1).max(1_000_000),
  messages: z.array(z.looseObject({ role: z.enum(["user", "assistant"]), content })).min(1).max(1000),
  system: content.optional(),
  temperature: z.number().min(0).max(1).optional(),
  top_p: z.number().min(0).max(1).optional(),
  top_k: z.number().int().min(0).optional(),
  stop_sequences: z.array(z.string().min(1).max(200)).max(8).optional(),
  stream: z.boolean().optional(),
  thinking: z.union([
    z.looseObject({ type: z.literal("enabled"), budget_tokens: z.number().int().min(1024) }),
    z.looseObject({ type: z.enum(["disabled", "adaptive"]) }),
  ]).optional(),
  tools: z.array(z.looseObject({ name: z.string(), type: z.string().optional() })).max(128).optional(),
  tool_choice: z.looseObject({ type: z.enum(["auto", "any", "tool", "none"]), name: z.string().optional() }).optional(),
  metadata: z.looseObject({}).optional(),
});

type MessagesBody = z.infer<typeof messagesSchema>;

/** A field only Anthropic's models honour, and why another provider's cannot. */
type Only = OnlyField;

const bad = (field: string, message: string) =>
  new GatewayError("invalid_request", `${field}: ${message}`, { details: { field } });

/** A block's text, for a system block or a tool result's content. */
function textOf(value: unknown): string {
  if (typeof value === "string") return value;
  if (!Array.isArray(value)) return "";
  return value.filter((b) => b?.type === "text" && typeof b.text === "string").map((b) => b.text as string).join("\n");
}

/** The messages, the system, the images and the fields only Anthropic can take. */
function toMessages(body: MessagesBody, only: Only[]): { messages: HubMessage[]; system?: string; images: ImageInfo[] } {
  const images: ImageInfo[] = [];
  const contents: HubMessage[] = [];
  const names = new Map<string, string>();
  const note = (field: string, why: string) => {
    if (!only.some((o) => o.field === field)) only.push({ field, why });
  };
  body.messages.forEach((message, i) => {
    const parts: HubPart[] = [];
    const blocks = typeof message.content === "string" ? [{ type: "text", text: message.content }] : message.content;
    blocks.forEach((raw, j) => {
      const at = `messages[${i}].content[${j}]`;
      const b = raw as Record<string, unknown>;
      if (b.cache_control !== undefined) note("cache_control", "prompt caching is Anthropic's");
      switch (b.type) {
        case "text":
          if (typeof b.text !== "string") throw bad(`${at}.text`, "must be a string.");
          if (Array.isArray(b.citations) && b.citations.length > 0) note("citations", "citations are Anthropic's");
          if (b.text !== "") parts.push({ type: "text", text: b.text });
          return;
        case "image":
        case "document": {
          const source = b.source as Record<string, unknown> | undefined;
          if (source?.type !== "base64" || typeof source.data !== "string" || typeof source.media_type !== "string") {
            note(`${at}.source`, "only a base64 source can be sent to another provider");
            return;
          }
          const image = { mimeType: source.media_type, data: source.data };
          images.push(inspectInlineImage(image, `${at}.source`, `${at}.${IMAGE_FIELD_CODE}`));
          parts.push({ type: "media", ...image });
          return;
        }
        case "tool_use": {
          if (typeof b.name !== "string" || !FUNCTION_NAME.test(b.name)) {
            throw bad(`${at}.name`, "must be a tool's name.");
          }
          if (typeof b.id === "string") names.set(b.id, b.name);
          const args = isObject(b.input) ? b.input : {};
          parts.push({
            type: "tool_call",
            ...(typeof b.id === "string" ? { id: b.id } : {}),
            name: b.name,
            args: args as Record<string, unknown>,
          });
          return;
        }
        case "tool_result": {
          const id = typeof b.tool_use_id === "string" ? b.tool_use_id : "";
          const name = names.get(id);
          if (name === undefined) throw bad(`${at}.tool_use_id`, "names no tool_use of an earlier turn.");
          // The hub holds a tool's result as text: a block other than text inside it is Claude's alone.
          if (Array.isArray(b.content) && b.content.some((c) => !isObject(c) || c.type !== "text")) {
            note(`${at}.content`, "a tool result's image or document is Anthropic's");
          }
          const error = b.is_error === true ? { error: true } : {};
          parts.push({ type: "tool_result", id, name, result: textOf(b.content), ...error });
          return;
        }
        case "thinking":
          if (typeof b.thinking === "string") {
            parts.push({
              type: "text",
              text: b.thinking,
              thought: true,
              ...(typeof b.signature === "string" ? { signature: b.signature } : {}),
            });
          }
          return;
        default:
          note(`${at}.type`, `a ${String(b.type).slice(0, 40)} block is Anthropic's`);
      }
    });
    if (parts.length > 0) contents.push({ role: message.role === "assistant" ? "assistant" : "user", parts });
  });
  if (
    Array.isArray(body.system) && body.system.some((b) => (b as Record<string, unknown>).cache_control !== undefined)
  ) {
    note("cache_control", "prompt caching is Anthropic's");
  }
  const system = body.system === undefined ? undefined : textOf(body.system);
  return { messages: contents, ...(system === undefined || system === "" ? {} : { system }), images };
}

function optionsOf(body: MessagesBody, counting: boolean): HubOptions {
  const config: HubOptions = {};
  if (!counting) config.maxOutputTokens = body.max_tokens;
  if (body.temperature !== undefined) config.temperature = body.temperature;
  if (body.top_p !== undefined) config.topP = body.top_p;
  if (body.top_k !== undefined) config.topK = body.top_k;
  if (body.stop_sequences !== undefined && body.stop_sequences.length > 0) config.stop = body.stop_sequences;
  if (body.thinking?.type === "enabled") {
    config.thinking = { budgetTokens: (body.thinking as { budget_tokens: number }).budget_tokens, includeThoughts: true };
  }
  return config;
}

function toolsOf(body: MessagesBody, only: Only[]): { tools?: HubTool[]; toolChoice?: HubToolChoice } {
  const tools: HubTool[] = [];
  for (const [i, tool] of (body.tools ?? []).entries()) {
    if (tool.type !== undefined && tool.type !== "custom") {
      only.push({ field: `tools[${i}]`, why: `the ${tool.type.slice(0, 40)} tool is Anthropic's` });
      continue;
    }
    if (!FUNCTION_NAME.test(tool.name)) throw bad(`tools[${i}].name`, "must be 1-64 characters of A-Z a-z 0-9 _ -.");
    tools.push({
      name: tool.name,
      ...(typeof tool.description === "string" ? { description: tool.description } : {}),
      ...(isObject(tool.input_schema)
        ? { parameters: tool.input_schema }
        : {}),
    });
  }
  if (tools.length === 0) return {};
  const choice = body.tool_choice;
  if (choice === undefined) return { tools };
  if (choice.type === "tool") {
    if (choice.name === undefined || !tools.some((d) => d.name === choice.name)) {
      throw bad("tool_choice.name", "must name one of tools.");
    }
    return { tools, toolChoice: { mode: "required", only: [choice.name] } };
  }
  return { tools, toolChoice: { mode: choice.type === "none" ? "none" : choice.type === "auto" ? "auto" : "required" } };
}

/** Parses a Messages body (or, `counting`, a count_tokens body: no max_tokens) into the gateway's request. */
export function parseMessages(input: ParseInput, counting = false): NormalizedRequest {
  const raw = input.body;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new GatewayError("invalid_json", "The body must be a JSON object.");
  }
  const parsed = (counting ? messagesSchema.extend({ max_tokens: z.number().int().min(1).optional() }) : messagesSchema)
    .safeParse(raw);
  if (!parsed.success) throw invalidRequest(parsed.error);
  const body = parsed.data as MessagesBody;
  const only: Only[] = [];
  const { messages, system, images } = toMessages(body, only);
  if (messages.length === 0) throw bad("messages", "say something: every message is empty.");
  const tools = toolsOf(body, only);
  return {
    model: body.model,
    ...callOptionsFromHeaders(input.headers, input.limits),
    messages,
    ...(system === undefined ? {} : { system }),
    options: optionsOf(body, counting),
    ...tools,
    asks: tools.tools === undefined ? {} : { tools: { feature: "tools", words: "tools (function calling)" } },
    outputCapField: { words: "max_tokens", code: OUTPUT_CAP_CODE },
    optionFields: { temperature: "temperature", topP: "top_p", topK: "top_k", thinkingBudget: "thinking.budget_tokens" },
    imageTokens: imageTokensOf(images),
    stream: !counting && body.stream === true,
    // Anthropic's metadata (user_id) is the provider's, not the gateway's audit record.
    metadata: {},
    dialectBody: { dialect: "anthropic", body: raw as Record<string, unknown> },
    ...(only.length === 0 ? {} : { only: { dialect: "anthropic", fields: only } }),
  };
}
