// OpenAI's embeddings (`POST …/llm-invoke/v1/embeddings`) for every embedding model the gateway serves,
// OpenAI's and Google's, so `client.embeddings.create` reaches them by changing base_url and api_key.
// An embedding is reserved (its input booked, no output), called, logged and priced like any attempt.
// docs/openai.md says what maps to what.
import { GatewayError } from "../../../_shared/errors.ts";
import type { Surface } from "../shared/surface.ts";
import { answer } from "./embeddings/answer.ts";
import { parseEmbeddings, type EmbeddingsRequest } from "./embeddings/request.ts";
import { openAiFront } from "./errors.ts";

export const embeddingsSurface: Surface<EmbeddingsRequest> = {
  ...openAiFront,
  parse: parseEmbeddings,
  answer,
  stream: () => {
    throw new GatewayError("internal_error", "embeddings are never streamed");
  },
};
