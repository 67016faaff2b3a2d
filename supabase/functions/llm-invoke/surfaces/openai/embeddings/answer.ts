// Vectors as OpenAI's embeddings list: one `embedding` object per input (its index), floats or, as the
// caller asked (OpenAI's SDK asks base64 by default and decodes it), the little-endian float32 bytes in
// base64; the model that served; usage with the input tokens (prompt_tokens = total_tokens).
import type { JsonAnswer } from "../../../../_shared/envelope.ts";
import type { InvokeResult } from "../../../attempt/context.ts";
import { vectorsOf } from "../../../embedding/operation.ts";
import type { SurfaceContext } from "../../shared/surface.ts";
import type { EmbeddingsRequest } from "./request.ts";

export function answer(result: InvokeResult, ctx: SurfaceContext<EmbeddingsRequest>): JsonAnswer {
  const vectors = vectorsOf(result);
  return {
    body: {
      object: "list",
      data: vectors.map((vector, index) => ({
        object: "embedding",
        index,
        embedding: ctx.request.encoding === "base64" ? base64Of(vector) : vector,
      })),
      model: result.model,
      usage: { prompt_tokens: result.usage.prompt_tokens, total_tokens: result.usage.prompt_tokens },
    },
    asIs: true,
  };
}

/** A vector as OpenAI's base64: its float32 values, little-endian, as bytes. */
export function base64Of(vector: readonly number[]): string {
  const bytes = new Uint8Array(vector.length * 4);
  const view = new DataView(bytes.buffer);
  vector.forEach((v, i) => view.setFloat32(i * 4, v, true));
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}
