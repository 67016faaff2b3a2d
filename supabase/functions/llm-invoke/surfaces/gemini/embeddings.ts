// Google's embedding methods, `POST …/v1beta/models/{model}:embedContent` (one content) and
// `:batchEmbedContents` (its `requests`, at most 100 as Google takes), for every embedding model the
// gateway serves, Google's and OpenAI's, so `ai.models.embedContent` of @google/genai reaches them by
// changing its base URL and key. taskType, title and outputDimensionality as Google defines them (an
// OpenAI model is sent outputDimensionality as its dimensions; task type and title are Google's only,
// refused by name for another provider's model). The answer is Google's: `embedding.values`, or
// `embeddings[].values` in order. The body says which method it is (`content` or `requests`).
import { z } from "zod";
import type { JsonAnswer } from "../../../_shared/envelope.ts";
import { GatewayError } from "../../../_shared/errors.ts";
import { GOOGLE_DIALECT } from "../../../_shared/providers/google/answer.ts";
import { GOOGLE_EMBED_BATCH } from "../../../_shared/providers/google/embeddings.ts";
import { isObject } from "../../../_shared/json.ts";
import { invalidRequest } from "../../../_shared/validation.ts";
import type { InvokeResult } from "../../attempt/context.ts";
import type { EmbeddingRequest } from "../../contract.ts";
import { vectorsOf } from "../../embedding/operation.ts";
import { callOptionsFromHeaders } from "../shared/call-options.ts";
import type { EmbeddingSurface, ParseInput, SurfaceContext } from "../shared/surface.ts";

/** The route's most requests in one batchEmbedContents: Google's own batch maximum. */
export const MAX_BATCH = GOOGLE_EMBED_BATCH;

const TASK_TYPES = [
  "TASK_TYPE_UNSPECIFIED",
  "RETRIEVAL_QUERY",
  "RETRIEVAL_DOCUMENT",
  "SEMANTIC_SIMILARITY",
  "CLASSIFICATION",
  "CLUSTERING",
  "QUESTION_ANSWERING",
  "FACT_VERIFICATION",
  "CODE_RETRIEVAL_QUERY",
] as const;

const content = z.looseObject({
  parts: z.array(z.looseObject({ text: z.string() })).min(1).max(1000),
  role: z.string().optional(),
});
const embedRequest = z.looseObject({
  model: z.string().optional(),
  content,
  taskType: z.enum(TASK_TYPES).optional(),
  title: z.string().optional(),
  outputDimensionality: z.number().int().min(1).max(65536).optional(),
});
const batchRequest = z.strictObject({ requests: z.array(embedRequest).min(1) });

export interface GeminiEmbedRequest extends EmbeddingRequest {
  batch: boolean;
}

function parse(input: ParseInput): GeminiEmbedRequest {
  const body = input.body;
  if (!isObject(body)) throw new GatewayError("invalid_json", "The body must be a JSON object.");
  const batch = "requests" in body;
  if (batch && Array.isArray(body.requests) && body.requests.length === 0) {
    throw new GatewayError("empty_input", "requests: empty input: a batch needs at least one request.", {
      details: { field: "requests", inputs: 0 },
    });
  }
  const parsed = batch ? batchRequest.safeParse(body) : embedRequest.safeParse(body);
  if (!parsed.success) throw invalidRequest(parsed.error);
  const requests = batch ? (parsed.data as z.infer<typeof batchRequest>).requests : [parsed.data as z.infer<typeof embedRequest>];
  if (requests.length > MAX_BATCH) {
    throw new GatewayError(
      "invalid_request",
      `requests: ${requests.length} requests sent; at most ${MAX_BATCH} requests can be in one batch.`,
      { details: { field: "requests", inputs: requests.length, max_batch: MAX_BATCH } },
    );
  }
  // One task, title and size for the call: a batch that mixes them is sent as its first says.
  const first = requests[0]!;
  const differs = requests.find((r) =>
    r.taskType !== first.taskType || r.title !== first.title || r.outputDimensionality !== first.outputDimensionality
  );
  if (differs !== undefined) {
    throw new GatewayError("unsupported_feature", "requests: every request of a batch must ask the same taskType, title and outputDimensionality.", {
      details: { field: "requests", feature: "mixed_batch" },
    });
  }
  const texts = requests.map((r) => r.content.parts.map((p) => p.text).join(""));
  const empty = texts.findIndex((t) => t.trim() === "");
  if (empty >= 0) {
    throw new GatewayError("empty_input", `requests[${empty}].content has no text.`, { details: { field: "content" } });
  }
  const googleOnly = [
    ...(first.taskType === undefined ? [] : [{ field: "taskType", why: "task types are Google's embedding models' only" }]),
    ...(first.title === undefined ? [] : [{ field: "title", why: "a document title is Google's embedding models' only" }]),
  ];
  return {
    model: (input.model ?? "").replace(/^models\//, ""),
    ...callOptionsFromHeaders(input.headers, input.limits),
    fallbackModels: [],
    metadata: {},
    tokenIds: 0,
    embed: {
      inputs: texts,
      ...(first.outputDimensionality === undefined ? {} : { dimensions: first.outputDimensionality }),
      ...(first.taskType === undefined ? {} : { taskType: first.taskType }),
      ...(first.title === undefined ? {} : { title: first.title }),
    },
    ...(googleOnly.length === 0 ? {} : { only: { dialect: GOOGLE_DIALECT, fields: googleOnly } }),
    batch,
  };
}

function answer(result: InvokeResult, ctx: SurfaceContext<GeminiEmbedRequest>): JsonAnswer {
  const vectors = vectorsOf(result);
  const body = ctx.request.batch
    ? { embeddings: vectors.map((values) => ({ values })) }
    : { embedding: { values: vectors[0] ?? [] } };
  return { body, asIs: true };
}

export const geminiEmbeddingsSurface: EmbeddingSurface<GeminiEmbedRequest> = { parse, answer };
