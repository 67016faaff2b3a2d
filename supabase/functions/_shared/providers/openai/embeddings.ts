// OpenAI's embeddings REST (POST /v1/embeddings): the hub's embedding request as OpenAI's body (its inputs as
// given, strings or token ids; dimensions where asked; floats always, which the route re-encodes as the
// caller asked), and OpenAI's list of vectors and usage back in the hub's words. OpenAI counts one
// request per call however many inputs it holds, and every input token in TPM.
import { failureOf, readJsonAnswer, timedCall, type WireRules } from "../../upstream/call.ts";
import type { HubEmbedding } from "../../upstream/hub.ts";
import { type EmbedCall, type EmbedOutcome, upstreamFailure } from "../../upstream/port.ts";
import { roomOf } from "./errors.ts";
import { postOnce } from "../../upstream/post.ts";

export function embed(url: string, call: EmbedCall, rules: WireRules): Promise<EmbedOutcome> {
  const asked = call.request;
  return timedCall(call, rules, async (guard) => {
    const answer = await postOnce(
      url,
      { "content-type": "application/json", authorization: `Bearer ${call.apiKey}` },
      {
        model: call.request.model,
        input: asked.inputs,
        encoding_format: "float",
        ...(asked.dimensions === undefined ? {} : { dimensions: asked.dimensions }),
      },
      guard.signal,
    );
    const read = await readJsonAnswer(answer, rules, [call.apiKey], call.request.model);
    if (!read.ok) return read;
    const vectors = vectorsOf(read.body, asked.inputs.length);
    if (vectors === null) {
      const error = upstreamFailure("malformed", `${rules.upstream} answered without one embedding per input.`, {
        httpStatus: 200,
      });
      return { ok: false, error: failureOf(rules, error) };
    }
    const usage = read.body.usage as { prompt_tokens?: unknown } | undefined;
    const input = typeof usage?.prompt_tokens === "number" ? usage.prompt_tokens : null;
    const embedding: HubEmbedding = {
      vectors,
      usage: input === null
        ? null
        : { inputTokens: input, outputTokens: 0, thinkingTokens: 0, cachedInputTokens: 0, totalTokens: input },
      modelVersion: typeof read.body.model === "string" ? read.body.model : null,
    };
    return { ok: true as const, answer: embedding, room: roomOf(answer.headers) };
  });
}

/** The vectors in input order (each `data[]` names its index); null unless there is one per input. */
function vectorsOf(body: Record<string, unknown>, count: number): number[][] | null {
  if (!Array.isArray(body.data)) return null;
  const vectors: number[][] = new Array(count);
  for (const item of body.data as Array<{ index?: unknown; embedding?: unknown }>) {
    if (typeof item.index !== "number" || item.index < 0 || item.index >= count) return null;
    if (!Array.isArray(item.embedding)) return null;
    vectors[item.index] = item.embedding as number[];
  }
  return vectors.filter((v) => v !== undefined).length === count ? vectors : null;
}
