// Anthropic's answers in the hub's words (../../upstream/hub.ts): a whole `message`, and each named
// stream event as a HubChunk, folded on the side into the whole message Anthropic would have sent
// (a replay on Anthropic's own route). Usage: the hub's input is all of Anthropic's input
// (input_tokens + cache writes + cache reads), cache reads its cached part, cache writes their parts by
// lifetime (5 minutes, an hour: each priced apart); Anthropic's output_tokens
// include the thinking, which it does not count apart.
import type { FinishReason, HubAnswer, HubOutput, HubPart, HubUsage } from "../../upstream/hub.ts";
import { type Json, JSON_TOOL } from "./request.ts";
import { isObject } from "../../json.ts";

const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : 0);

const FINISH: Record<string, FinishReason> = {
  end_turn: "stop",
  stop_sequence: "stop",
  max_tokens: "max_tokens",
  model_context_window_exceeded: "max_tokens",
  tool_use: "tool_call",
  refusal: "content_filter",
};

/** The hub's finish for Anthropic's stop_reason; the JSON tool's call is the answer, so it stops. */
function finishOf(word: unknown, json: boolean): HubOutput["finish"] {
  if (typeof word !== "string") return { reason: "other", word: null };
  const reason = json && word === "tool_use" ? "stop" : FINISH[word] ?? "other";
  return { reason, word: word.slice(0, 40) };
}

/**
 * Anthropic's usage (whole, or message_start's and message_delta's merged) in the hub's words. Cache
 * writes by lifetime from `cache_creation`; without it, every write is a 5-minute one (Anthropic's
 * default lifetime).
 */
export function usageOf(usage: unknown): HubUsage | null {
  if (!isObject(usage)) return null;
  const read = num(usage.cache_read_input_tokens);
  const written = num(usage.cache_creation_input_tokens);
  const input = num(usage.input_tokens) + written + read;
  const output = num(usage.output_tokens);
  const split = isObject(usage.cache_creation) ? usage.cache_creation : null;
  const write1h = split === null ? 0 : num(split.ephemeral_1h_input_tokens);
  const write5m = split === null ? written : num(split.ephemeral_5m_input_tokens);
  return {
    inputTokens: input,
    outputTokens: output,
    thinkingTokens: 0,
    cachedInputTokens: read,
    totalTokens: input + output,
    ...(write5m > 0 ? { cacheWrite5mTokens: write5m } : {}),
    ...(write1h > 0 ? { cacheWrite1hTokens: write1h } : {}),
  };
}

/** One content block as hub parts (a JSON answer's tool input as its text). */
function partOf(b: Json, json: boolean): HubPart | null {
  switch (b.type) {
    case "text":
      return typeof b.text === "string" ? { type: "text", text: b.text } : null;
    case "thinking":
      return {
        type: "text",
        text: typeof b.thinking === "string" ? b.thinking : "",
        thought: true,
        ...(typeof b.signature === "string" ? { signature: b.signature } : {}),
      };
    case "tool_use": {
      const input = isObject(b.input) ? b.input : {};
      if (json && b.name === JSON_TOOL) return { type: "text", text: JSON.stringify(input) };
      return {
        type: "tool_call",
        ...(typeof b.id === "string" ? { id: b.id } : {}),
        name: String(b.name ?? ""),
        args: input,
      };
    }
    default:
      // redacted_thinking, server tools' blocks: Anthropic's own route keeps them (pass-through).
      return null;
  }
}

/** A whole Messages answer; null when it is not one (no content list). */
export function messageToHub(body: Json, json = false): HubAnswer | null {
  if (!Array.isArray(body.content)) return null;
  const parts = body.content.filter(isObject).map((b) => partOf(b, json)).filter((p): p is HubPart => p !== null);
  return {
    outputs: [{ index: 0, parts, finish: finishOf(body.stop_reason, json) }],
    usage: usageOf(body.usage),
    modelVersion: typeof body.model === "string" ? body.model : null,
    id: typeof body.id === "string" ? body.id : null,
  };
}

/**
 * Reads Anthropic's stream events in order: each one's hub piece (null where it carries nothing the
 * hub holds yet: a tool call's input arrives in pieces and is given whole when its block stops), and
 * the whole message folded beside. `ended`: message_stop came (a stream that ends without it was cut).
 */
export class StreamReader {
  private message: Json = {};
  private blocks: Json[] = [];
  private partialJson = new Map<number, string>();
  private usage: Json = {};
  ended = false;

  constructor(private readonly json = false) {}

  private piece(parts: HubPart[], extra: Partial<HubAnswer> = {}, finish: HubOutput["finish"] = null): HubAnswer {
    return { outputs: [{ index: 0, parts, finish }], usage: null, modelVersion: null, id: null, ...extra };
  }

  read(event: Json): HubAnswer | null {
    const index = typeof event.index === "number" ? event.index : 0;
    switch (event.type) {
      case "message_start": {
        this.message = isObject(event.message) ? { ...event.message } : {};
        this.usage = isObject(this.message.usage) ? { ...this.message.usage } : {};
        return {
          outputs: [],
          // Anthropic's own count of the input, sent first: a stream cut before message_delta is billed on it.
          usage: usageOf(this.message.usage),
          modelVersion: typeof this.message.model === "string" ? this.message.model : null,
          id: typeof this.message.id === "string" ? this.message.id : null,
        };
      }
      case "content_block_start": {
        const b = isObject(event.content_block) ? { ...event.content_block } : {};
        this.blocks[index] = b;
        if (b.type === "tool_use") this.partialJson.set(index, "");
        return null;
      }
      case "content_block_delta": {
        const d = isObject(event.delta) ? event.delta : {};
        const b = this.blocks[index] ?? (this.blocks[index] = {});
        if (d.type === "text_delta" && typeof d.text === "string") {
          b.text = String(b.text ?? "") + d.text;
          return this.piece([{ type: "text", text: d.text }]);
        }
        if (d.type === "thinking_delta" && typeof d.thinking === "string") {
          b.thinking = String(b.thinking ?? "") + d.thinking;
          return this.piece([{ type: "text", text: d.thinking, thought: true }]);
        }
        if (d.type === "signature_delta" && typeof d.signature === "string") {
          b.signature = d.signature;
          return this.piece([{ type: "text", text: "", thought: true, signature: d.signature }]);
        }
        if (d.type === "input_json_delta" && typeof d.partial_json === "string") {
          this.partialJson.set(index, (this.partialJson.get(index) ?? "") + d.partial_json);
        }
        return null;
      }
      case "content_block_stop": {
        const b = this.blocks[index];
        const text = this.partialJson.get(index);
        if (b === undefined || text === undefined) return null;
        this.partialJson.delete(index);
        try {
          const parsed = text === "" ? {} : JSON.parse(text);
          b.input = isObject(parsed) ? parsed : {};
        } catch {
          b.input = {};
        }
        const part = partOf(b, this.json);
        return part === null ? null : this.piece([part]);
      }
      case "message_delta": {
        const d = isObject(event.delta) ? event.delta : {};
        Object.assign(this.message, d);
        if (isObject(event.usage)) Object.assign(this.usage, event.usage);
        return this.piece([], { usage: usageOf(this.usage) }, finishOf(d.stop_reason, this.json));
      }
      case "message_stop":
        this.ended = true;
        return null;
      default:
        // ping, and event names Anthropic may add: nothing for the hub.
        return null;
    }
  }

  /** The whole message so far, as Anthropic's whole answer would have said it. */
  whole(): Json {
    return { ...this.message, content: this.blocks.filter(isObject), usage: this.usage };
  }
}
