// Google's own REST routes (v1beta models/{model}:generateContent, :streamGenerateContent, :countTokens,
// GET models and models/{model}), so code written for Google's SDKs works by pointing its base URL at
// the gateway. Bodies come in Google's GenerateContentRequest (camelCase or snake_case, as Google's
// REST accepts both) and answers, streams and errors go out exactly in Google's shape. See docs/gemini.md.
//
// This file assembles the surface the handler calls; each job lives in its own module under gemini/:
// request.ts (body → the gateway's request), hub.ts (Gemini's fields in the hub's words, and what only
// Google has a word for carried to Google as given), parts.ts and json-keys.ts (Gemini's parts checked,
// its snake_case read), answer.ts (an answer in Google's shape), fields.ts (Google's field naming and its refusals),
// safety-enums.ts (numbered enums of Google's REST clients), count-tokens.ts, errors.ts (Google's
// error shape), stream.ts (SSE and JSON-array streams), models.ts (model list and get).
import type { JsonAnswer, StreamAnswer } from "../../_shared/envelope.ts";
import type { InvokeResult, InvokeStream } from "../attempt/context.ts";
import type { NormalizedRequest } from "../contract.ts";
import { geminiAnswerFor } from "./gemini/answer.ts";
import { countTokensAnswer, parseCountTokens } from "./gemini/count-tokens.ts";
import { geminiFront } from "./gemini/errors.ts";
import { geminiModel, geminiModels } from "./gemini/models.ts";
import { normalized, parseGenerateBody, pathModel } from "./gemini/request.ts";
import { geminiJsonArrayStream, sseFrames } from "./gemini/stream.ts";
import { SSE_HEADERS, sseBody } from "./shared/sse.ts";
import type { Surface, ParseInput, SurfaceContext } from "./shared/surface.ts";

export { geminiErrorAnswer, GOOGLE_STATUS, googleError, type GoogleErrorBody, retryDelay } from "./gemini/errors.ts";
export { countTokensAnswer, parseCountTokens } from "./gemini/count-tokens.ts";
export { type GeminiModel, geminiModel, geminiModels } from "./gemini/models.ts";
export { geminiJsonArrayStream } from "./gemini/stream.ts";

export const geminiSurface: Surface = {
  ...geminiFront,

  parse(input: ParseInput): NormalizedRequest {
    const model = pathModel(input.model);
    return normalized(model, parseGenerateBody(input.body, model), input.headers, input.limits, input.stream ?? false);
  },

  answer(result: InvokeResult): JsonAnswer {
    return { body: geminiAnswerFor(result), asIs: true };
  },

  /** Google's REST streams as one JSON array unless asked for SSE (?alt=sse); older SDKs read the array. */
  stream(answer: InvokeStream | InvokeResult, ctx: SurfaceContext): StreamAnswer {
    if (ctx.url !== undefined && ctx.url.searchParams.get("alt") !== "sse") return geminiJsonArrayStream(answer, ctx);
    return { stream: sseBody(sseFrames(answer, ctx.requestId)), headers: { ...SSE_HEADERS } };
  },

  countTokens: {
    parse: (input) => parseCountTokens(input.body, input.model ?? "", input.limits),
    answer: countTokensAnswer,
  },

  models: {
    list: (models, { url }) =>
      geminiModels(models, Number(url.searchParams.get("pageSize")) || undefined, url.searchParams.get("pageToken") ?? undefined),
    one: (models, id) => ({ ...geminiModel(models, id) }),
  },
};
