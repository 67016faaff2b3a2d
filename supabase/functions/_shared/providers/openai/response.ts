// OpenAI's Chat Completions answers in the hub's words (../../upstream/hub.ts), so the attempt loop,
// finalize, the stream relay and the routes of another dialect read them as they read every provider's
// (OpenAI's own route passes OpenAI's answer and chunks as they came). Usage: OpenAI's prompt_tokens and
// completion_tokens, its reasoning tokens (inside completion_tokens) as the hub's thinking tokens beside
// the answer's, its cached prompt tokens as the hub's cached input tokens.
import type { FinishReason, HubAnswer, HubFinish, HubOutput, HubPart, HubUsage } from "../../upstream/hub.ts";
import { unwrappedText } from "./schema.ts";
import { isObject } from "../../json.ts";

type Json = Record<string, unknown>;

const FINISH: Record<string, FinishReason> = {
  stop: "stop",
  tool_calls: "tool_call",
  function_call: "tool_call",
  length: "max_tokens",
  content_filter: "content_filter",
};

/** The hub's finish for OpenAI's finish_reason; undefined while the choice goes on. */
export function finishOf(reason: unknown): HubFinish | undefined {
  return typeof reason === "string" ? { reason: FINISH[reason] ?? "other", word: reason.slice(0, 40) } : undefined;
}


function usageOf(usage: unknown): HubUsage | null {
  if (!isObject(usage)) return null;
  const n = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : 0);
  const prompt = n(usage.prompt_tokens);
  const completion = n(usage.completion_tokens);
  const details = (v: unknown, field: string) => isObject(v) ? n(v[field]) : 0;
  const reasoning = Math.min(completion, details(usage.completion_tokens_details, "reasoning_tokens"));
  return {
    inputTokens: prompt,
    outputTokens: completion - reasoning,
    thinkingTokens: reasoning,
    cachedInputTokens: details(usage.prompt_tokens_details, "cached_tokens"),
    totalTokens: typeof usage.total_tokens === "number" ? usage.total_tokens : prompt + completion,
  };
}

/** A tool call's arguments (a JSON text) as the hub's args object; text that is not an object is kept under `arguments`. */
function argsOf(text: unknown): Json {
  if (typeof text !== "string" || text === "") return {};
  try {
    const parsed = JSON.parse(text);
    return isObject(parsed) ? parsed : { arguments: parsed };
  } catch {
    return { arguments: text };
  }
}

function callPart(call: Json): HubPart {
  const fn = isObject(call.function) ? call.function : {};
  return {
    type: "tool_call",
    ...(typeof call.id === "string" ? { id: call.id } : {}),
    name: typeof fn.name === "string" ? fn.name : "",
    args: argsOf(fn.arguments),
  };
}

const textPart = (text: string): HubPart => ({ type: "text", text });
const refusalPart = (text: string): HubPart => ({ type: "text", text, refusal: true });

function answerOf(body: Json, outputs: HubOutput[]): HubAnswer {
  return {
    outputs,
    usage: usageOf(body.usage),
    modelVersion: typeof body.model === "string" ? body.model : null,
    id: typeof body.id === "string" ? body.id : null,
  };
}

/**
 * A whole chat.completion; null when it has no choices (not an answer). `wrapped`: the JSON answer was
 * asked as an object holding it (schema.ts), and its text is the value held.
 */
export function completionToHub(body: Json, wrapped = false): HubAnswer | null {
  if (!Array.isArray(body.choices) || body.choices.length === 0) return null;
  const outputs = body.choices.filter(isObject).map((choice, position): HubOutput => {
    const message = isObject(choice.message) ? choice.message : {};
    const parts: HubPart[] = [];
    if (typeof message.content === "string" && message.content !== "") {
      parts.push(textPart(wrapped ? unwrappedText(message.content) : message.content));
    }
    if (typeof message.refusal === "string" && message.refusal !== "") parts.push(refusalPart(message.refusal));
    if (Array.isArray(message.tool_calls)) parts.push(...message.tool_calls.filter(isObject).map(callPart));
    return {
      index: typeof choice.index === "number" ? choice.index : position,
      parts,
      finish: finishOf(choice.finish_reason) ?? null,
    };
  });
  return answerOf(body, outputs);
}

/**
 * Streamed chat.completion.chunk objects in the hub's words, for the books and for a route of another
 * dialect (OpenAI's own route passes OpenAI's chunks as they came: the client gives both). Text deltas
 * pass at once; a tool call's arguments come in pieces and are passed whole when its choice finishes
 * (the hub's tool call holds them whole), and so is the text of a wrapped JSON answer (`wrapped`,
 * schema.ts): the value it holds is known only once it is whole. Returns null for a chunk that carries
 * nothing of the hub's (a role-only delta, a piece of a tool call).
 */
export class ChunkTranslator {
  private readonly calls = new Map<number, Map<number, { id?: string; name: string; args: string }>>();
  private readonly texts = new Map<number, string>();

  constructor(private readonly wrapped = false) {}

  translate(chunk: Json): HubAnswer | null {
    const outputs: HubOutput[] = [];
    for (const [position, choice] of (Array.isArray(chunk.choices) ? chunk.choices : []).entries()) {
      if (!isObject(choice)) continue;
      const index = typeof choice.index === "number" ? choice.index : position;
      const delta = isObject(choice.delta) ? choice.delta : {};
      const parts: HubPart[] = [];
      if (typeof delta.content === "string" && delta.content !== "") {
        if (this.wrapped) this.texts.set(index, (this.texts.get(index) ?? "") + delta.content);
        else parts.push(textPart(delta.content));
      }
      if (typeof delta.refusal === "string" && delta.refusal !== "") parts.push(refusalPart(delta.refusal));
      if (Array.isArray(delta.tool_calls)) this.collect(index, delta.tool_calls);
      const finish = finishOf(choice.finish_reason);
      if (finish !== undefined) parts.push(...this.finishedText(index), ...this.finished(index));
      if (parts.length > 0 || finish !== undefined) outputs.push({ index, parts, finish: finish ?? null });
    }
    const answer = answerOf(chunk, outputs);
    return outputs.length === 0 && answer.usage === null ? null : answer;
  }

  private collect(choice: number, deltas: unknown[]): void {
    const calls = this.calls.get(choice) ?? new Map();
    this.calls.set(choice, calls);
    for (const [position, d] of deltas.entries()) {
      if (!isObject(d)) continue;
      const at = typeof d.index === "number" ? d.index : position;
      const fn = isObject(d.function) ? d.function : {};
      const call = calls.get(at) ?? { name: "", args: "" };
      if (typeof d.id === "string") call.id = d.id;
      if (typeof fn.name === "string") call.name += fn.name;
      if (typeof fn.arguments === "string") call.args += fn.arguments;
      calls.set(at, call);
    }
  }

  private finishedText(choice: number): HubPart[] {
    const text = this.texts.get(choice);
    this.texts.delete(choice);
    return text === undefined ? [] : [textPart(unwrappedText(text))];
  }

  private finished(choice: number): HubPart[] {
    const calls = [...(this.calls.get(choice) ?? new Map()).entries()].sort(([a], [b]) => a - b);
    this.calls.delete(choice);
    return calls.map(([, c]) => callPart({ id: c.id, function: { name: c.name, arguments: c.args } }));
  }
}

interface FoldedChoice {
  message: Json & { content: string | null; refusal: string | null };
  calls: Map<number, { id?: string; type: string; function: { name: string; arguments: string } }>;
  logprobs: { content: unknown[] | null; refusal: unknown[] | null } | null;
  finish_reason: unknown;
}

/** The fields of a chunk that name the completion they make up (its id, snapshot, time, fingerprint, tier). */
const COMPLETION_FIELDS = ["id", "created", "model", "service_tier", "system_fingerprint"];

/**
 * OpenAI's streamed chunks folded into the chat.completion they make up, as the whole answer comes:
 * each choice's content, refusal, tool calls (by their index, arguments joined) and logprobs in order,
 * and its finish; the completion's id, snapshot, time, fingerprint and tier, and the usage. A stored
 * streamed answer is replayed from it.
 */
export class CompletionFolder {
  private readonly head: Json = {};
  private usage: Json | null = null;
  private readonly choices = new Map<number, FoldedChoice>();

  add(chunk: Json): void {
    for (const field of COMPLETION_FIELDS) if (chunk[field] !== undefined) this.head[field] = chunk[field];
    if (isObject(chunk.usage)) this.usage = chunk.usage;
    for (const [position, choice] of (Array.isArray(chunk.choices) ? chunk.choices : []).entries()) {
      if (!isObject(choice)) continue;
      const index = typeof choice.index === "number" ? choice.index : position;
      const folded = this.choices.get(index) ??
        { message: { role: "assistant", content: null, refusal: null }, calls: new Map(), logprobs: null, finish_reason: null };
      this.choices.set(index, folded);
      const delta = isObject(choice.delta) ? choice.delta : {};
      if (typeof delta.role === "string") folded.message.role = delta.role;
      if (typeof delta.content === "string") folded.message.content = (folded.message.content ?? "") + delta.content;
      if (typeof delta.refusal === "string") folded.message.refusal = (folded.message.refusal ?? "") + delta.refusal;
      for (const [at, d] of (Array.isArray(delta.tool_calls) ? delta.tool_calls : []).entries()) {
        if (!isObject(d)) continue;
        const n = typeof d.index === "number" ? d.index : at;
        const call = folded.calls.get(n) ?? { type: "function", function: { name: "", arguments: "" } };
        folded.calls.set(n, call);
        const fn = isObject(d.function) ? d.function : {};
        if (typeof d.id === "string") call.id = d.id;
        if (typeof d.type === "string") call.type = d.type;
        if (typeof fn.name === "string") call.function.name += fn.name;
        if (typeof fn.arguments === "string") call.function.arguments += fn.arguments;
      }
      if (isObject(choice.logprobs)) {
        const logprobs = folded.logprobs ?? { content: null, refusal: null };
        for (const kind of ["content", "refusal"] as const) {
          const more = choice.logprobs[kind];
          if (Array.isArray(more)) logprobs[kind] = [...(logprobs[kind] ?? []), ...more];
        }
        folded.logprobs = logprobs;
      }
      if (typeof choice.finish_reason === "string") folded.finish_reason = choice.finish_reason;
    }
  }

  /** The completion so far. */
  completion(): Json {
    const choices = [...this.choices.entries()].sort(([a], [b]) => a - b).map(([index, c]) => {
      const calls = [...c.calls.entries()].sort(([a], [b]) => a - b).map(([, call]) => call);
      return {
        index,
        message: { ...c.message, ...(calls.length === 0 ? {} : { tool_calls: calls }) },
        logprobs: c.logprobs,
        finish_reason: c.finish_reason,
      };
    });
    const { id, created, model, ...rest } = this.head;
    return { id, object: "chat.completion", created, model, choices, usage: this.usage, ...rest };
  }
}
