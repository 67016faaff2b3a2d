// Google's embedding REST: one input is `models/{model}:embedContent`, several `:batchEmbedContents`
// (at most GOOGLE_EMBED_BATCH, 100, per batch, Google's 400 says; each counted by Google as a request of
// its own, which the reservation books at once: llm-invoke/embedding/operation.ts). Task type, title
// and outputDimensionality as the caller gave them. Google's answer names no token count: the
// estimate the reservation booked stands as the usage.
import { failureOf, readJsonAnswer, timedCall, type WireRules } from "../../upstream/call.ts";
import type { HubEmbed, HubEmbedding } from "../../upstream/hub.ts";
import { type EmbedCall, type EmbedOutcome, upstreamFailure } from "../../upstream/port.ts";
import { postOnce } from "../../upstream/post.ts";

/** Google's most inputs in one batchEmbedContents ("at most 100 requests can be in one batch"). */
export const GOOGLE_EMBED_BATCH = 100;

export function embed(
  url: (method: string) => string,
  call: EmbedCall,
  rules: WireRules,
): Promise<EmbedOutcome> {
  const asked = call.request;
  const model = call.request.model;
  const one = asked.inputs.length === 1;
  const body = one
    ? contentRequest(asked, asked.inputs[0]!)
    : { requests: asked.inputs.map((input) => ({ model: `models/${model}`, ...contentRequest(asked, input) })) };
  return timedCall(call, rules, async (guard) => {
    const answer = await postOnce(
      url(one ? "embedContent" : "batchEmbedContents"),
      { "content-type": "application/json", "x-goog-api-key": call.apiKey },
      body,
      guard.signal,
    );
    const read = await readJsonAnswer(answer, rules, [call.apiKey], model);
    if (!read.ok) return read;
    const list = one ? [read.body.embedding] : read.body.embeddings;
    const vectors = Array.isArray(list)
      ? list.map((e) => (typeof e === "object" && e !== null && Array.isArray((e as { values?: unknown }).values)
        ? (e as { values: number[] }).values
        : null))
      : [];
    if (vectors.length !== asked.inputs.length || vectors.some((v) => v === null)) {
      const error = upstreamFailure("malformed", `${rules.upstream} answered without one embedding per input.`, {
        httpStatus: 200,
      });
      return { ok: false, error: failureOf(rules, error) };
    }
    const embedding: HubEmbedding = { vectors: vectors as number[][], usage: null, modelVersion: null };
    return { ok: true as const, answer: embedding };
  });
}

function contentRequest(asked: HubEmbed, input: string | number[]): Record<string, unknown> {
  return {
    content: { parts: [{ text: typeof input === "string" ? input : "" }] },
    ...(asked.taskType === undefined ? {} : { taskType: asked.taskType }),
    ...(asked.title === undefined ? {} : { title: asked.title }),
    ...(asked.dimensions === undefined ? {} : { outputDimensionality: asked.dimensions }),
  };
}
