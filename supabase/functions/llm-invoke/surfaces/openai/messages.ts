// OpenAI's messages → the hub's messages and system text: roles, text and image parts (images as data
// URLs, checked and counted like any inline image), and the tool-call round trip: an assistant's
// tool_calls become tool calls, and a tool message the result of the call it names.
import { z } from "zod";
import { GatewayError } from "../../../_shared/errors.ts";
import type { HubMessage, HubPart } from "../../../_shared/upstream/hub.ts";
import { sanitize } from "../../../_shared/sanitize.ts";
import { type ImageInfo, inspectInlineImage } from "../../model/images.ts";
import { IMAGE_FIELD_CODE } from "../../field-codes.ts";
import { joinText } from "../shared/request-rules.ts";
import { invalid, unsupported } from "./checks.ts";
import { isObject } from "../../../_shared/json.ts";

const MAX_PARTS = 1000;

const textPartSchema = z.looseObject({ type: z.literal("text"), text: z.string() });
// Parts are typed loosely here and read one by one below, so that an image or an unsupported kind gets
// its own error naming the part.
const anyPartSchema = z.looseObject({ type: z.string() });
const textContent = z.union([z.string(), z.array(textPartSchema).max(MAX_PARTS)]);

// Where Google's OpenAI-compatible endpoint carries a Gemini 3 thought signature (outputs.ts); null
// is as absent. Google's signatures are a few KiB of base64; a bound keeps a message's opaque field
// from carrying megabytes to Google on every turn (the body's own bound is 10 MB).
export const MAX_THOUGHT_SIGNATURE_CHARS = 64 * 1024;
const extraContentSchema = z.looseObject({
  google: z.looseObject({
    thought_signature: z.string().max(
      MAX_THOUGHT_SIGNATURE_CHARS,
      `a thought signature is at most ${MAX_THOUGHT_SIGNATURE_CHARS} characters: send back the one the answer carried, unchanged.`,
    ).nullable().optional(),
  }).nullable().optional(),
}).nullable().optional();

const toolCallSchema = z.looseObject({
  id: z.string().min(1).max(256),
  type: z.string(),
  function: z.looseObject({ name: z.string().min(1), arguments: z.string() }).optional(),
  extra_content: extraContentSchema,
});

// Messages are loose objects: a client that sends back the assistant message it received (with
// `refusal`, `annotations`, …) must not be refused for fields that say nothing to Gemini.
export const messageSchema = z.discriminatedUnion("role", [
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
    extra_content: extraContentSchema,
    name: z.string().optional(),
  }),
  z.looseObject({ role: z.literal("tool"), content: textContent, tool_call_id: z.string().min(1) }),
  z.looseObject({ role: z.literal("function") }),
]);

export type Message = z.infer<typeof messageSchema>;

interface Converted {
  messages: HubMessage[];
  system?: string;
  images: ImageInfo[];
}

/** True when a turn carries something besides blank text (an image, a tool call or result). */
function hasContent(parts: readonly HubPart[]): boolean {
  return parts.some((p) => (p.type === "text" ? p.text.trim() !== "" : true));
}

export function toMessages(messages: readonly Message[]): Converted {
  const system: string[] = [];
  const contents: HubMessage[] = [];
  const images: ImageInfo[] = [];
  // tool_call_id → the function's name: a tool message names only the call, Gemini wants the name.
  const calls = new Map<string, string>();

  messages.forEach((message, i) => {
    const where = `messages[${i}]`;
    const parts: HubPart[] = [];
    const text = (value: string) => parts.push({ type: "text", text: value });
    switch (message.role) {
      case "system":
      case "developer":
        system.push(textOf(message.content));
        return;
      case "function":
        throw unsupported(`${where}.role`, 'the legacy "function" role is not offered; use tool messages');
      case "user":
        if (typeof message.content === "string") {
          if (message.content.trim() !== "") text(message.content);
        } else {
          message.content.forEach((part, j) => {
            const at = `${where}.content[${j}]`;
            if (part.type === "text") {
              if (typeof part.text !== "string") throw invalid(`${at}.text`, "must be a string.");
              if (part.text.trim() !== "") text(part.text);
            } else if (part.type === "image_url") {
              const image = imageOf(part.image_url, `${at}.image_url`);
              images.push(inspectInlineImage(image, `${at}.image_url`, `${at}.${IMAGE_FIELD_CODE}`));
              parts.push({ type: "media", ...image });
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
          if (content.trim() !== "") text(content);
        } else if (Array.isArray(content)) {
          content.forEach((part, j) => {
            const at = `${where}.content[${j}]`;
            // A refusal part is what the assistant said: kept as its text.
            const said = part.type === "text" ? part.text : part.type === "refusal" ? part.refusal : undefined;
            if (typeof said !== "string") {
              throw invalid(
                `${at}`,
                "an assistant part is text ({type: text, text}) or refusal ({type: refusal, refusal}).",
              );
            }
            if (said.trim() !== "") text(said);
          });
        }
        // A text answer's signature goes back on the text it came with (its last part); without text
        // there is nothing to put it on.
        const textSignature = message.extra_content?.google?.thought_signature;
        const lastText = parts.findLastIndex((p) => p.type === "text");
        if (typeof textSignature === "string" && lastText >= 0) {
          parts[lastText] = { ...parts[lastText]!, signature: textSignature } as HubPart;
        }
        (message.tool_calls ?? []).forEach((call, j) => {
          const at = `${where}.tool_calls[${j}]`;
          if (call.type !== "function") throw unsupported(`${at}.type`, "only function tool calls are offered");
          if (call.function === undefined) throw invalid(`${at}.function`, "a function call needs its function.");
          calls.set(call.id, call.function.name);
          const signature = call.extra_content?.google?.thought_signature ?? undefined;
          parts.push({
            type: "tool_call",
            id: call.id,
            name: call.function.name,
            args: argumentsOf(call.function.arguments, `${at}.function.arguments`),
            // Gemini 3 wants its thought signature back with the call it came with.
            ...(signature === undefined ? {} : { signature }),
          });
        });
        break;
      }
      case "tool": {
        const name = calls.get(message.tool_call_id);
        if (name === undefined) {
          throw invalid(`${where}.tool_call_id`, "names no tool call of an earlier assistant message.");
        }
        parts.push({
          type: "tool_result",
          id: message.tool_call_id,
          name,
          result: textOf(message.content),
        });
        break;
      }
    }
    if (!hasContent(parts)) {
      throw new GatewayError("empty_input", `${where} has no content.`, { details: { field: where } });
    }
    contents.push({ role: message.role === "assistant" ? "assistant" : "user", parts });
  });

  if (contents.length === 0) {
    throw new GatewayError("empty_input", "messages has no user, assistant or tool message.", {
      details: { field: "messages" },
    });
  }
  const joined = joinText(system);
  return { messages: contents, ...(joined === undefined ? {} : { system: joined }), images };
}

function textOf(content: string | ReadonlyArray<{ text: string }>): string {
  return typeof content === "string" ? content : content.map((p) => p.text).join("");
}

export function argumentsOf(raw: string, field: string): Record<string, unknown> {
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
 * `data:image/png;base64,…` → an inline image. Only the short prefix is looked at here; the bytes
 * are checked by images.ts like any inline image. A URL to fetch is refused: the gateway
 * would have to download it inside the caller's wait, from wherever it points.
 */
export function imageOf(raw: unknown, field: string): { mimeType: string; data: string } {
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
