// An embedding fitted to one model: it goes only to a model that embeds (its google_ai_embedding_models
// row); a vector size the model cannot give, more inputs than its provider takes in one call, and what
// only another dialect's models take (Google's task type and title, OpenAI's token ids) are refused by
// name. A batch is one call to the provider and one attempt row (a provider that counts each input
// books them all at once: operation.ts), so it is at most what the provider takes in one call.
import { GatewayError } from "../../_shared/errors.ts";
import type { HubEmbedRequest } from "../../_shared/upstream/hub.ts";
import type { EmbeddingRequest, ModelProfile } from "../contract.ts";
import { checkOnly } from "../model/adapt.ts";

export function fitEmbedding(caps: ModelProfile, request: EmbeddingRequest): HubEmbedRequest {
  const traits = caps.embedding;
  if (traits === undefined) {
    throw new GatewayError(
      "unsupported_feature",
      `${caps.model} does not embed; use an embedding model (GET …/v1/models lists them).`,
      { details: { model: caps.model, feature: "embeddings" } },
    );
  }
  const asked = request.embed;
  if (asked.dimensions !== undefined && (asked.dimensions > traits.dimensions ||
    (!traits.shortenable && asked.dimensions !== traits.dimensions))) {
    throw new GatewayError(
      "invalid_request",
      `${caps.model} gives vectors of ${traits.dimensions} dimensions${
        traits.shortenable ? " or fewer" : " only"
      }; ${asked.dimensions} were asked.`,
      { details: { model: caps.model, field: "dimensions" } },
    );
  }
  if (asked.inputs.length > traits.maxBatch) {
    throw new GatewayError(
      "invalid_request",
      `${caps.model}'s provider takes at most ${traits.maxBatch} inputs in one request; ${asked.inputs.length} were sent.`,
      { details: { model: caps.model, field: "input", max_batch: traits.maxBatch, inputs: asked.inputs.length } },
    );
  }
  checkOnly(caps, request.only);
  return { model: caps.model, ...asked };
}
