// OpenAI's embeddings (`POST …/llm-invoke/v1/embeddings`) for every embedding model the gateway serves,
// OpenAI's and Google's, so `client.embeddings.create` reaches them by changing base_url and api_key.
// An embedding is reserved (its input booked, no output), called, logged and priced like any attempt.
// docs/openai.md says what maps to what. Its front (errors, key) is OpenAI's (http/surfaces.ts).
import type { EmbeddingSurface } from "../shared/surface.ts";
import { answer } from "./embeddings/answer.ts";
import { parseEmbeddings, type EmbeddingsRequest } from "./embeddings/request.ts";

export const embeddingsSurface: EmbeddingSurface<EmbeddingsRequest> = { parse: parseEmbeddings, answer };
