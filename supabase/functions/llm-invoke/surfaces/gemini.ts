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
import { geminiAnswerFor } from "./gemini/answer.ts";
import type { NormalizedRequest } from "../contract.ts";
import { geminiErrorAnswer } from "./gemini/errors.ts";
import { normalized, parseGenerateBody, pathModel } from "./gemini/request.ts";
import { sseFrames } from "./gemini/stream.ts";
import { SSE_HEADERS, sseBody } from "./sse.ts";
import type { GenerateSurface, ParseInput, SurfaceContext } from "./surface.ts";

export { countTokensAnswer, parseCountTokens } from "./gemini/count-tokens.ts";
export { geminiErrorAnswer, GOOGLE_STATUS, googleError, type GoogleErrorBody, retryDelay } from "./gemini/errors.ts";
export { type GeminiModel, geminiModel, geminiModels } from "./gemini/models.ts";
export { geminiJsonArrayStream } from "./gemini/stream.ts";

export const geminiSurface: GenerateSurface = {
  parse(input: ParseInput): NormalizedRequest {
    const model = pathModel(input.model);
    return normalized(model, parseGenerateBody(input.body, model), input.headers, input.limits, input.stream ?? false);
  },

  answer(result: InvokeResult): JsonAnswer {
    return { body: geminiAnswerFor(result), asIs: true };
  },

  stream(answer: InvokeStream | InvokeResult, ctx: SurfaceContext): StreamAnswer {
    return { stream: sseBody(sseFrames(answer, ctx.requestId)), headers: { ...SSE_HEADERS } };
  },

  error: geminiErrorAnswer,
};
