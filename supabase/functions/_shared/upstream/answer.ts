// Reading Google's generateContent answers (whole, or one streamed chunk): the answer's text, why it
// ended, and the usage Google counted. Everything else in the answer is passed to callers unchanged.
import type { UpstreamAnswer } from "./shapes.ts";
import type { HubUsage } from "./hub.ts";

interface RawCandidate {
  index?: unknown;
  content?: { parts?: Array<{ text?: unknown; thought?: unknown }> };
  finishReason?: unknown;
}

function candidates(response: UpstreamAnswer): RawCandidate[] {
  return Array.isArray(response.candidates) ? response.candidates as RawCandidate[] : [];
}

/**
 * The first candidate (index 0). By its `index` where Google gives one: a streamed chunk of a request
 * for several candidates may carry only another candidate's piece.
 */
function firstCandidate(response: UpstreamAnswer): RawCandidate | undefined {
  const all = candidates(response);
  return all.find((c) => c.index === 0) ?? all.find((c, i) => c.index === undefined && i === 0);
}

/** The first candidate's answer text (thoughts left out). */
export function responseText(response: UpstreamAnswer): string {
  const parts = firstCandidate(response)?.content?.parts ?? [];
  let text = "";
  for (const part of parts) if (typeof part.text === "string" && part.thought !== true) text += part.text;
  return text;
}

/** Why the first candidate ended, or BLOCKED_<reason> when the prompt itself was blocked; null mid-stream. */
export function responseFinishReason(response: UpstreamAnswer): string | null {
  const reason = firstCandidate(response)?.finishReason;
  if (typeof reason === "string") return reason;
  const blocked = (response.promptFeedback as { blockReason?: unknown } | undefined)?.blockReason;
  return typeof blocked === "string" ? `BLOCKED_${blocked}` : null;
}

/**
 * What a whole answer says, as the port's GenerateOutcome carries it beside the answer itself: its
 * text, why it ended, the usage counted, its candidates and model version. One reading for every
 * client (each translates its provider's answer into the hub shape first).
 */
export function answerFacts(response: UpstreamAnswer): {
  text: string;
  finishReason: string | null;
  usage: HubUsage | null;
  candidates: unknown[];
  modelVersion: string | null;
  response: UpstreamAnswer;
} {
  return {
    text: responseText(response),
    finishReason: responseFinishReason(response),
    usage: responseUsage(response),
    candidates: candidates(response),
    modelVersion: typeof response.modelVersion === "string" ? response.modelVersion : null,
    response,
  };
}

/** True when the answer has neither candidates nor a prompt verdict: not a generateContent answer. */
export function isEmptyResponse(response: UpstreamAnswer): boolean {
  return candidates(response).length === 0 && response.promptFeedback === undefined;
}

/**
 * Google's usageMetadata in the hub's words, or null when the answer carries none. Cache writes
 * (cacheWrite5mTokenCount, cacheWrite1hTokenCount) are the port's own words, not Google's: a
 * provider that writes its cache (Anthropic) says them there.
 */
export function responseUsage(response: UpstreamAnswer): HubUsage | null {
  const u = response.usageMetadata as Record<string, unknown> | undefined;
  if (u === undefined || u === null || typeof u !== "object") return null;
  const n = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : 0);
  const write5m = n(u.cacheWrite5mTokenCount);
  const write1h = n(u.cacheWrite1hTokenCount);
  return {
    inputTokens: n(u.promptTokenCount),
    outputTokens: n(u.candidatesTokenCount),
    thinkingTokens: n(u.thoughtsTokenCount),
    cachedInputTokens: n(u.cachedContentTokenCount),
    totalTokens: n(u.totalTokenCount),
    ...(write5m > 0 ? { cacheWrite5mTokens: write5m } : {}),
    ...(write1h > 0 ? { cacheWrite1hTokens: write1h } : {}),
  };
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
export function mergeChunk(whole: UpstreamAnswer, chunk: UpstreamAnswer): UpstreamAnswer {
  const merged: UpstreamAnswer = { ...whole, ...chunk };
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
