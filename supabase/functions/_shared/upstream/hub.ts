// The hub: the gateway's own shapes of one request to a model and of its answer, whole or streamed,
// in no provider's words. Every route translates its caller's body into a HubRequest, every dialect
// (../providers/<dialect>/) translates a HubRequest into its wire format and its provider's answer
// back into a HubAnswer (and each streamed piece into a HubChunk), each in its own folder; a route
// writes its caller's answer from the HubAnswer. So N routes and M dialects need N + M translations,
// and a new wire format is translated from and into these, never into another provider's.
//
// Pass-through stays beside the hub: a caller's body in a provider's own dialect is sent as it came
// (`dialectBody`), and that provider's own answer comes back as it came (`DialectAnswer`: `dialectAnswer`
// on a whole answer, `own` on a chunk), which a route of that dialect answers unchanged. The hub shape
// is always there too, so every other reader (the books, the logs, a route of another dialect) reads it.
//
// An embedding is an operation of its own, not a generation: its request (HubEmbedRequest: inputs, not
// messages; no options, no stream) and its answer (HubEmbedding: vectors) are apart, at the end.
//
// Words: input/output/thinking/cached tokens; a message's role is the user's or the assistant's; an
// answer holds one or more outputs (alternatives asked for), each a list of parts; a finish reason is
// one of FINISH_REASONS, with the provider's own word beside it for callers that show it.
import type { ServiceTier } from "../vocabulary.ts";

// ---- Dialects --------------------------------------------------------------------------------------------

/**
 * The dialects' names, each added by its own folder (../providers/<dialect>/provider.ts, `declare
 * module` of this file), so the hub names no provider and a tag is one of them, never any string: a
 * typo does not compile.
 */
// deno-lint-ignore no-empty-interface
export interface DialectTags {}

/** The name of a dialect the gateway speaks to providers (the registry's). */
export type DialectTag = keyof DialectTags;

// ---- Parts and messages ----------------------------------------------------------------------------------

/**
 * A part's fields only one dialect has a word for (its metadata beside a text or an image, a call's
 * field the hub does not carry), as the caller gave them (DialectExtras below).
 */
interface HubPartExtras {
  extras?: DialectExtras;
}

/**
 * A piece of text. `thought`: the model's reasoning shown to the caller, not part of the answer's
 * text. `signature`: an opaque token the provider gave with it, which must be sent back with the same
 * text in a later turn (a reasoning model's proof of its thoughts).
 */
export interface HubTextPart extends HubPartExtras {
  type: "text";
  text: string;
  thought?: boolean;
  signature?: string;
  /** The model declines to answer, in its own words (OpenAI's `refusal`): shown as text, never kept as an answer. */
  refusal?: boolean;
}

/** Inline binary data (an image), base64. */
export interface HubMediaPart extends HubPartExtras {
  type: "media";
  mimeType: string;
  /** base64, without a data: prefix. */
  data: string;
}

/**
 * The model asks for a tool to be called. `id` pairs it with its result where the provider gives
 * ids (else the gateway pairs by name and order); `args` is the arguments' JSON object.
 */
export interface HubToolCallPart extends HubPartExtras {
  type: "tool_call";
  id?: string;
  name: string;
  args: Record<string, unknown>;
  signature?: string;
}

/**
 * The caller's answer to a tool call, as the caller gave it: text (OpenAI's tool message, Anthropic's
 * tool_result, Google's `{output}`) or a JSON object (any other Google `response`). Each provider's
 * request builder carries it in its own form: Google's must be an object, so only it wraps text.
 * `error`: the tool failed and `result` says how (Anthropic's `is_error`, Google's `{error}`).
 */
export interface HubToolResultPart extends HubPartExtras {
  type: "tool_result";
  id?: string;
  name: string;
  result: string | Record<string, unknown>;
  error?: boolean;
}

/** A tool result for a dialect that carries it as a string (OpenAI's, Anthropic's): the text, or the object as JSON. */
export function toolResultText(part: Pick<HubToolResultPart, "result">): string {
  return typeof part.result === "string" ? part.result : JSON.stringify(part.result);
}

export type HubPart = HubTextPart | HubMediaPart | HubToolCallPart | HubToolResultPart;

/** `user`: the caller's turn (tool results included); `assistant`: the model's own earlier turn. */
export type HubRole = "user" | "assistant";

export interface HubMessage {
  role: HubRole;
  parts: HubPart[];
}

// ---- What is asked ---------------------------------------------------------------------------------------

/**
 * A schema, always JSON Schema (lower-case type names, `null` a type of its own, counts as numbers): the
 * hub's one form. A route whose callers write another (Gemini's OpenAPI subset) converts it on the way
 * in with its provider's converter, and a provider that reads another converts it on the way out.
 */
export type HubSchema = unknown;

/** The answer's form: free text, or JSON (held to a schema where one is given). */
export type HubOutputFormat = { type: "text" } | { type: "json"; schema?: HubSchema };

/** A tool the model may call. */
export interface HubTool {
  name: string;
  description?: string;
  parameters?: HubSchema;
}

/** Whether the model may, must or must not call a tool (`only`: must, and only one of these). */
export type HubToolChoice = { mode: "auto" } | { mode: "none" } | { mode: "required"; only?: string[] };

/** How the model generates. Every field is optional: absent, the provider's default. */
export interface HubOptions {
  maxOutputTokens?: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  stop?: string[];
  /** How many alternative outputs to generate. */
  outputCount?: number;
  seed?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  format?: HubOutputFormat;
  /** Reasoning: a budget of thinking tokens (0: none), and whether the thoughts come back. */
  thinking?: { budgetTokens?: number; includeThoughts?: boolean };
}

/** The caller's own body in a provider's dialect: sent as it came to a provider of that dialect. */
export interface DialectBody {
  dialect: DialectTag;
  body: Record<string, unknown>;
  /** The dialect's endpoint the body is for, where it has more than one (OpenAI's `responses`); absent: its usual. */
  endpoint?: string;
}

/**
 * What only one dialect has a word for (its safety settings, a tool that is not a function, an option
 * the hub lacks, a part's own field), carried as the caller gave it, keyed by that dialect: its
 * translation sets each over its translation of the hub's words (a field whose value is `undefined`:
 * left out), so its provider receives the caller's body as given; every other dialect leaves them out
 * (where that would change the answer, the route has a model of another dialect refuse them).
 */
export interface DialectExtras {
  dialect: DialectTag;
  /** Fields of the body (a request's) or of the part (a part's). */
  fields: Record<string, unknown>;
  /** Generation options beside the hub's (a request's only). */
  options?: Record<string, unknown>;
}

/** One request to one model, in the hub's words (what a dialect translates into its wire format). */
export interface HubRequest {
  /** The provider's id of the model (the one booked). */
  model: string;
  /** The system instruction, when the model takes one (model/ folds it into the first turn where not). */
  system?: string;
  messages: HubMessage[];
  options: HubOptions;
  tools?: HubTool[];
  toolChoice?: HubToolChoice;
  /** The gateway's service tier for this call; absent: standard, nothing sent. */
  serviceTier?: ServiceTier;
  dialectExtras?: DialectExtras;
  /** Pass-through: only a provider of this dialect is given one, and sends it instead of translating. */
  dialectBody?: DialectBody;
  /**
   * The output tokens the reservation booked for this call where the caller named no cap (the model
   * row's booked answer): a provider that requires a cap (Anthropic's max_tokens) sends it.
   */
  bookedOutputTokens?: number;
}

// ---- What comes back -------------------------------------------------------------------------------------

/**
 * Why an output ended. `stop`: the model finished (or hit a stop sequence); `max_tokens`: the output
 * cap; `tool_call`: it asks for a tool; `content_filter`: the provider's safety or policy filter cut
 * it; `prompt_blocked`: the prompt itself was refused, nothing generated; `other`: any other reason
 * (the provider's word says which).
 */
export const FINISH_REASONS = ["stop", "max_tokens", "tool_call", "content_filter", "prompt_blocked", "other"] as const;
export type FinishReason = (typeof FINISH_REASONS)[number];

/** Why an output ended: the hub's reason, and the provider's own word for it (for routes that show it). */
export interface HubFinish {
  reason: FinishReason;
  /** The provider's word as it came (STOP, length, end_turn...), capped; null: it gave none. */
  word: string | null;
}

/** One generated alternative. */
export interface HubOutput {
  /** Its position among the alternatives asked for (0 first). */
  index: number;
  parts: HubPart[];
  /** null while it streams. */
  finish: HubFinish | null;
}

/**
 * Tokens as the provider counted them. `outputTokens` is the answer's own; `thinkingTokens` (billed
 * as output) are beside it, never inside; `cachedInputTokens` are of `inputTokens`, read from the
 * provider's cache (billed at the cached price).
 */
export interface HubUsage {
  inputTokens: number;
  outputTokens: number;
  thinkingTokens: number;
  cachedInputTokens: number;
  totalTokens: number;
  /** Of `inputTokens`, written to the provider's cache to live 5 minutes / an hour (absent: none). */
  cacheWrite5mTokens?: number;
  cacheWrite1hTokens?: number;
}

/** Output tokens as billed: the answer's and the thoughts'. */
export function billedOutputTokens(usage: HubUsage): number {
  return usage.outputTokens + usage.thinkingTokens;
}

/**
 * A whole answer, or one streamed piece of it (a HubChunk's `answer`: its outputs' new parts, a finish
 * where one ends, the usage where the provider sends it).
 */
export interface HubAnswer {
  outputs: HubOutput[];
  /** null: the provider sent no count (the caller then keeps its estimate). */
  usage: HubUsage | null;
  /** The model version the provider says served; null: not said. */
  modelVersion: string | null;
  /** The provider's id of this answer; null: none. */
  id: string | null;
  /** The prompt was refused before anything was generated: the provider's word for why. */
  promptBlocked?: { word: string };
}

/** A provider's own answer (or chunk) in its dialect, as it came (pass-through to a route of that dialect). */
export interface DialectAnswer {
  dialect: DialectTag;
  body: Record<string, unknown>;
  /** The dialect's endpoint that answered, where it has more than one (OpenAI's `responses`); absent: its usual. */
  endpoint?: string;
}

/**
 * One piece of a streamed answer: in the hub's words (`answer`, null where the piece holds nothing the
 * hub carries yet: a role-only delta, part of a tool call's arguments, which the dialect gives whole
 * when its output ends), and as the provider sent it (`own`).
 */
export interface HubChunk {
  answer: HubAnswer | null;
  own?: DialectAnswer;
}

/** An answer's text: its first output's text parts, thoughts left out. */
export function hubText(answer: HubAnswer): string {
  const first = answer.outputs.find((o) => o.index === 0);
  let text = "";
  for (const part of first?.parts ?? []) if (part.type === "text" && part.thought !== true) text += part.text;
  return text;
}

/** Why the first output ended (a refused prompt's `prompt_blocked`); null mid-stream. */
export function hubFinish(answer: HubAnswer): HubFinish | null {
  const first = answer.outputs.find((o) => o.index === 0);
  if (first?.finish != null) return first.finish;
  return answer.promptBlocked === undefined ? null : { reason: "prompt_blocked", word: answer.promptBlocked.word };
}

/**
 * Adds a streamed piece to the whole answer so far: each output's parts appended (adjacent text of the
 * same kind joined, until a signed piece closes it), its finish, the usage, the version and the id take
 * the latest value. The whole is what the provider's whole answer would have said.
 */
export function mergeHubChunk(whole: HubAnswer, piece: HubAnswer): HubAnswer {
  const outputs = whole.outputs.map((o) => ({ ...o, parts: [...o.parts] }));
  for (const next of piece.outputs) {
    let target = outputs.find((o) => o.index === next.index);
    if (target === undefined) {
      target = { index: next.index, parts: [], finish: null };
      outputs.push(target);
    }
    for (const part of next.parts) {
      const last = target.parts.at(-1);
      if (
        part.type === "text" && last?.type === "text" && (last.thought === true) === (part.thought === true) &&
        last.signature === undefined
      ) {
        target.parts[target.parts.length - 1] = { ...last, ...part, text: last.text + part.text };
      } else {
        target.parts.push({ ...part });
      }
    }
    if (next.finish !== null) target.finish = next.finish;
  }
  return {
    outputs: outputs.sort((a, b) => a.index - b.index),
    usage: piece.usage ?? whole.usage,
    modelVersion: piece.modelVersion ?? whole.modelVersion,
    id: piece.id ?? whole.id,
    ...(piece.promptBlocked ?? whole.promptBlocked) === undefined
      ? {}
      : { promptBlocked: piece.promptBlocked ?? whole.promptBlocked },
  };
}

/** An answer with nothing yet: where a stream's whole starts. */
export const EMPTY_ANSWER: HubAnswer = { outputs: [], usage: null, modelVersion: null, id: null };

// ---- Embeddings: an operation of their own -------------------------------------------------------------

/**
 * What an embedding asks, whatever the model: the inputs, each a text or the provider's token ids
 * (OpenAI's), in order; the vector size where the model may shorten it; Google's task type and title.
 */
export interface HubEmbed {
  inputs: Array<string | number[]>;
  dimensions?: number;
  taskType?: string;
  title?: string;
}

/** One embedding call to one model (what a dialect translates into its embedding endpoint's body). */
export interface HubEmbedRequest extends HubEmbed {
  /** The provider's id of the model (the one booked). */
  model: string;
}

/** What an embedding call answers: one vector per input, in the inputs' order, and what was counted. */
export interface HubEmbedding {
  vectors: number[][];
  /** The provider's count (input tokens only); null: it sent none (Google's), the booked input stands. */
  usage: HubUsage | null;
  /** The model version the provider says served; null: not said. */
  modelVersion: string | null;
}
