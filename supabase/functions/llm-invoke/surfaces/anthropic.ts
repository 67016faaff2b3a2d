// Anthropic's surface: `POST …/llm-invoke/v1/messages` (and `/v1/messages/count_tokens`), and
// `GET …/llm-invoke/v1/models` in Anthropic's list shape when the caller sends `anthropic-version`, so
// code written for Anthropic's SDKs reaches every model the gateway serves by changing its base URL
// and key. A Messages body becomes the gateway's one request; a Claude model is sent the body as it
// came, and its answer and events come back as Anthropic sent them; another provider's answer is said
// in Anthropic's shapes, and so are the gateway's own errors. docs/anthropic.md is the reference.
import { modelNamed } from "../contract.ts";
import type { Surface } from "./shared/surface.ts";
import { anthropicModel, anthropicModels, answer, countTokensAnswer, stream } from "./anthropic/answer.ts";
import { anthropicFront } from "./anthropic/errors.ts";
import { parseMessages } from "./anthropic/request.ts";

export { parseMessages } from "./anthropic/request.ts";

export const anthropicSurface: Surface = {
  ...anthropicFront,
  parse: (input) => parseMessages(input),
  answer,
  stream,
  countTokens: { parse: (input) => parseMessages(input, true), answer: countTokensAnswer },
  models: {
    list: (models, { url }) => anthropicModels(models, url),
    one: (models, id) => {
      const entry = modelNamed(models, id);
      return entry === undefined ? undefined : anthropicModel(id, entry);
    },
  },
};
