// The OpenAI-compatible surface: `POST …/llm-invoke/v1/chat/completions` and `GET …/llm-invoke/v1/models`,
// so code written for the official OpenAI clients reaches the gateway by changing base_url and api_key.
// A chat.completions body becomes the gateway's one request in the hub's words (messages, options, tools);
// the answer, stream and the gateway's errors are said back in OpenAI's shapes. docs/openai.md
// is the reference of what maps to what and what is refused.
// Each job lives in its own module under openai/; this file assembles the surface and names what the
// rest of the gateway imports.
import { modelNamed } from "../contract.ts";
import type { Surface } from "./shared/surface.ts";
import { answer } from "./openai/answer.ts";
import { stream } from "./openai/chunks.ts";
import { openAiFront } from "./openai/errors.ts";
import { openAiModel, openAiModels } from "./openai/models.ts";
import { parseChatCompletion } from "./openai/request.ts";

export { finishReasonOf } from "./openai/outputs.ts";
export { openAiErrorObject } from "./openai/errors.ts";
export { openAiModel, openAiModels } from "./openai/models.ts";
export { includesUsage, parseChatCompletion, THINKING_BUDGETS } from "./openai/request.ts";

export const openAiSurface: Surface = {
  ...openAiFront,
  parse: parseChatCompletion,
  answer,
  stream,
  models: {
    list: (models, { now }) => openAiModels(models, now),
    one: (models, id, { now }) => {
      const name = id.replace(/^models\//, "");
      const entry = modelNamed(models, name);
      return entry === undefined ? undefined : openAiModel(name, now, entry);
    },
  },
};
