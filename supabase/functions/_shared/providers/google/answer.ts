// Google's generateContent answers (whole, or one streamed chunk) and the hub's (../../upstream/hub.ts),
// both ways. hubAnswerOf reads Google's answer into the hub's words (what the books, the logs and every
// other route read); geminiAnswerOf writes a hub answer in Google's shape, for the routes that answer
// their callers in it (Gemini's route, the native route's candidates) when another provider served;
// mergeGeminiChunk folds Google's chunks into the whole answer generateContent would have sent (a
// stored streamed answer is replayed from it).
import type { FinishReason, HubAnswer, HubOutput, HubPart, HubUsage } from "../../upstream/hub.ts";
import { isObject } from "../../json.ts";
import { functionResponseOf, toolResultOf } from "./tool-result.ts";

/** A generateContent answer, or one chunk of a streamed one, as Google sends it. */
export type GeminiAnswer = Record<string, unknown>;

/** The dialect's name, as the registry and a DialectAnswer carry it. */
export const GOOGLE_DIALECT = "google";

type Json = Record<string, unknown>;

interface RawPart {
  text?: unknown;
  thought?: unknown;
  thoughtSignature?: unknown;
  inlineData?: { mimeType?: unknown; data?: unknown };
  functionCall?: { name?: unknown; args?: unknown; id?: unknown };
  functionResponse?: { name?: unknown; response?: unknown; id?: unknown };
}

interface RawCandidate {
  index?: unknown;
  content?: { role?: unknown; parts?: RawPart[] };
  finishReason?: unknown;
}

/** Google's finishReasons that say its safety or policy filter cut the answer. */
const FILTERED = new Set([
  "SAFETY",
  "RECITATION",
  "BLOCKLIST",
  "PROHIBITED_CONTENT",
  "SPII",
  "IMAGE_SAFETY",
  "IMAGE_PROHIBITED_CONTENT",
]);

function reasonOf(word: string): FinishReason {
  if (word === "STOP") return "stop";
  if (word === "MAX_TOKENS") return "max_tokens";
  return FILTERED.has(word) ? "content_filter" : "other";
}

function candidatesOf(answer: GeminiAnswer): RawCandidate[] {
  return Array.isArray(answer.candidates) ? answer.candidates.filter(isObject) as RawCandidate[] : [];
}

/** One of Google's parts in the hub's words; null for a kind the hub does not carry (it stays in Google's own answer). */
function hubPartOf(p: RawPart): HubPart | null {
  const signature = typeof p.thoughtSignature === "string" ? { signature: p.thoughtSignature } : {};
  if (typeof p.text === "string") {
    return { type: "text", text: p.text, ...(p.thought === true ? { thought: true } : {}), ...signature };
  }
  if (isObject(p.inlineData) && typeof p.inlineData.data === "string") {
    return { type: "media", mimeType: String(p.inlineData.mimeType ?? ""), data: p.inlineData.data };
  }
  if (isObject(p.functionCall) && typeof p.functionCall.name === "string") {
    const { name, args, id } = p.functionCall;
    return {
      type: "tool_call",
      ...(typeof id === "string" ? { id } : {}),
      name,
      args: isObject(args) ? args : {},
      ...signature,
    };
  }
  if (isObject(p.functionResponse) && typeof p.functionResponse.name === "string") {
    const { name, response, id } = p.functionResponse;
    const result = toolResultOf(isObject(response) ? response : {});
    return { type: "tool_result", ...(typeof id === "string" ? { id } : {}), name, ...result };
  }
  return null;
}

/** Google's usageMetadata in the hub's words, or null when the answer carries none. */
export function geminiUsage(answer: GeminiAnswer): HubUsage | null {
  const u = answer.usageMetadata;
  if (!isObject(u)) return null;
  const n = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : 0);
  return {
    inputTokens: n(u.promptTokenCount),
    outputTokens: n(u.candidatesTokenCount),
    thinkingTokens: n(u.thoughtsTokenCount),
    cachedInputTokens: n(u.cachedContentTokenCount),
    totalTokens: n(u.totalTokenCount),
  };
}

/** Google's answer (whole, or one chunk) in the hub's words. */
export function hubAnswerOf(answer: GeminiAnswer): HubAnswer {
  const outputs: HubOutput[] = candidatesOf(answer).map((c, position) => {
    const parts: HubPart[] = [];
    for (const raw of Array.isArray(c.content?.parts) ? c.content.parts : []) {
      const part = isObject(raw) ? hubPartOf(raw) : null;
      if (part !== null) parts.push(part);
    }
    const word = typeof c.finishReason === "string" ? c.finishReason : null;
    return {
      index: typeof c.index === "number" ? c.index : position,
      parts,
      finish: word === null ? null : { reason: reasonOf(word), word: word.slice(0, 40) },
    };
  });
  const blocked = isObject(answer.promptFeedback) ? answer.promptFeedback.blockReason : undefined;
  return {
    outputs,
    usage: geminiUsage(answer),
    modelVersion: typeof answer.modelVersion === "string" ? answer.modelVersion : null,
    id: typeof answer.responseId === "string" ? answer.responseId : null,
    ...(typeof blocked === "string" ? { promptBlocked: { word: blocked.slice(0, 40) } } : {}),
  };
}

/** True when the answer has neither candidates nor a prompt verdict: not a generateContent answer. */
export function isEmptyAnswer(answer: GeminiAnswer): boolean {
  return candidatesOf(answer).length === 0 && answer.promptFeedback === undefined;
}

/** Google's finishReason for the hub's reason (where another provider served: its own word is not Google's). */
const FINISH_WORD: Record<FinishReason, string> = {
  stop: "STOP",
  max_tokens: "MAX_TOKENS",
  tool_call: "STOP",
  content_filter: "SAFETY",
  prompt_blocked: "OTHER",
  other: "OTHER",
};

function geminiPart(p: HubPart): Json {
  const signature = "signature" in p && p.signature !== undefined ? { thoughtSignature: p.signature } : {};
  switch (p.type) {
    case "text":
      return { text: p.text, ...(p.thought === true ? { thought: true } : {}), ...signature };
    case "media":
      return { inlineData: { mimeType: p.mimeType, data: p.data } };
    case "tool_call":
      return {
        functionCall: { name: p.name, args: p.args, ...(p.id === undefined ? {} : { id: p.id }) },
        ...signature,
      };
    case "tool_result":
      return { functionResponse: { name: p.name, response: functionResponseOf(p), ...(p.id === undefined ? {} : { id: p.id }) } };
  }
}

/** A hub answer (whole, or one streamed piece) in Google's shape, as generateContent would have said it. */
export function geminiAnswerOf(answer: HubAnswer): GeminiAnswer {
  const out: GeminiAnswer = {
    candidates: answer.outputs.map((o) => ({
      index: o.index,
      content: { role: "model", parts: o.parts.map(geminiPart) },
      ...(o.finish === null ? {} : { finishReason: FINISH_WORD[o.finish.reason] }),
    })),
  };
  if (answer.promptBlocked !== undefined) out.promptFeedback = { blockReason: answer.promptBlocked.word };
  if (answer.usage !== null) {
    const u = answer.usage;
    out.usageMetadata = {
      promptTokenCount: u.inputTokens,
      candidatesTokenCount: u.outputTokens,
      ...(u.thinkingTokens > 0 ? { thoughtsTokenCount: u.thinkingTokens } : {}),
      ...(u.cachedInputTokens > 0 ? { cachedContentTokenCount: u.cachedInputTokens } : {}),
      totalTokenCount: u.totalTokens,
    };
  }
  if (answer.modelVersion !== null) out.modelVersion = answer.modelVersion;
  if (answer.id !== null) out.responseId = answer.id;
  return out;
}

/**
 * The first candidate (index 0). By its `index` where Google gives one: a streamed chunk of a request
 * for several candidates may carry only another candidate's piece.
 */
function firstCandidate(answer: GeminiAnswer): RawCandidate | undefined {
  const all = candidatesOf(answer);
  return all.find((c) => c.index === 0) ?? all.find((c, i) => c.index === undefined && i === 0);
}

/** Why the first candidate ended, or BLOCKED_<reason> when the prompt itself was blocked; null mid-stream. */
export function geminiFinishReason(answer: GeminiAnswer): string | null {
  const reason = firstCandidate(answer)?.finishReason;
  if (typeof reason === "string") return reason;
  const blocked = isObject(answer.promptFeedback) ? answer.promptFeedback.blockReason : undefined;
  return typeof blocked === "string" ? `BLOCKED_${blocked}` : null;
}

/** An answer's candidates as Google gave them (the native route's `candidates`). */
export function geminiCandidates(answer: GeminiAnswer): unknown[] {
  return Array.isArray(answer.candidates) ? answer.candidates : [];
}

interface MergedCandidate {
  index?: number;
  content?: { role?: string; parts?: Array<Record<string, unknown>> };
  [field: string]: unknown;
}

/**
 * Adds a streamed chunk to the whole answer built so far (Google's shape of the whole, as
 * generateContent would have sent it): each candidate's parts are appended (adjacent text pieces of
 * the same kind joined), its other fields and the answer's top-level fields (usage, model version)
 * take the latest value.
 *
 * A thought signature (Gemini 3) closes the text it ends: a piece that carries one joins the text
 * before it and keeps the signature on the joined part (Google sends a text answer's signature with
 * its last piece, sometimes an empty one); text after a signed part starts a part of its own. So a
 * replay or a history built from the whole sends every signature back, on the text it came with.
 */
export function mergeGeminiChunk(whole: GeminiAnswer, chunk: GeminiAnswer): GeminiAnswer {
  const merged: GeminiAnswer = { ...whole, ...chunk };
  const before = Array.isArray(whole.candidates) ? whole.candidates as MergedCandidate[] : [];
  const after = before.map((c) => ({ ...c, content: { ...c.content, parts: [...(c.content?.parts ?? [])] } }));
  for (
    const [position, raw] of (Array.isArray(chunk.candidates) ? chunk.candidates as MergedCandidate[] : []).entries()
  ) {
    const index = typeof raw.index === "number" ? raw.index : position;
    let target = after.find((c, i) => (typeof c.index === "number" ? c.index : i) === index);
    if (target === undefined) {
      target = { index, content: { role: raw.content?.role ?? "model", parts: [] } };
      after.push(target);
    }
    const { content, ...rest } = raw;
    Object.assign(target, rest);
    const parts = target.content!.parts!;
    for (const part of content?.parts ?? []) {
      const last = parts.at(-1);
      if (
        typeof part.text === "string" && typeof last?.text === "string" &&
        (last.thought === true) === (part.thought === true) && last.thoughtSignature === undefined
      ) {
        parts[parts.length - 1] = { ...last, ...part, text: last.text + part.text };
      } else {
        parts.push({ ...part });
      }
    }
  }
  merged.candidates = after;
  return merged;
}

/** Google's chunks folded into the whole answer (mergeGeminiChunk), once, when it is asked for. */
export function foldGeminiChunks(chunks: readonly GeminiAnswer[]): GeminiAnswer {
  let whole: GeminiAnswer = {};
  for (const chunk of chunks) whole = mergeGeminiChunk(whole, chunk);
  return whole;
}

/**
 * An answer an earlier release of the gateway stored for replay, before answers were kept in the hub's
 * words: Google's answer under `response`, or before that only the gateway's own fields (its text,
 * usage, model, and its finish reason and candidates in Google's words).
 */
export interface EarlierStored {
  text: string;
  model: string;
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

/** Such an answer in Google's shape, as it was. */
export function earlierStoredAnswer(stored: EarlierStored): GeminiAnswer {
  const earlier = stored as EarlierStored & { response?: GeminiAnswer; finish_reason?: string | null; candidates?: unknown[] };
  if (earlier.response !== undefined) return earlier.response;
  return {
    candidates: earlier.candidates ?? [{
      content: { role: "model", parts: [{ text: stored.text }] },
      ...(earlier.finish_reason == null ? {} : { finishReason: earlier.finish_reason }),
      index: 0,
    }],
    usageMetadata: {
      promptTokenCount: stored.usage.prompt_tokens,
      candidatesTokenCount: stored.usage.completion_tokens,
      totalTokenCount: stored.usage.total_tokens,
    },
    modelVersion: stored.model,
  };
}
