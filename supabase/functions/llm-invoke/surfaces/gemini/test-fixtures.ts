// Tests' shorthand for a request as one model takes it: written in Gemini's shape (contents,
// systemInstruction, generationConfig, tools, toolConfig, safetySettings) and said in the hub's words
// by Gemini's route's translation (hub.ts), as the native and Gemini routes say theirs.
import type { DialectBody, HubRequest } from "../../../_shared/upstream/hub.ts";
import { generateContentBody } from "../../../_shared/providers/google/request.ts";
import type { NormalizedRequest, ServiceTier } from "../../contract.ts";
import { geminiInHub } from "./hub.ts";
import type { Content } from "./parts.ts";

export interface GeminiRequest {
  model: string;
  contents: Content[];
  systemInstruction?: string;
  generationConfig?: Record<string, unknown>;
  tools?: unknown[];
  toolConfig?: Record<string, unknown>;
  safetySettings?: unknown[];
  serviceTier?: ServiceTier;
  bookedOutputTokens?: number;
  dialectBody?: DialectBody;
}

/** The request in the hub's words, what only Google has a word for keyed by Google's dialect. */
export function hubRequestOf(request: GeminiRequest): HubRequest {
  const { model, contents, systemInstruction, serviceTier, bookedOutputTokens, dialectBody, ...fields } = request;
  const hub = geminiInHub({ contents, ...fields });
  return {
    model,
    ...(systemInstruction === undefined ? {} : { system: systemInstruction }),
    messages: hub.messages,
    options: hub.options,
    ...(hub.tools === undefined ? {} : { tools: hub.tools }),
    ...(hub.toolChoice === undefined ? {} : { toolChoice: hub.toolChoice }),
    ...(hub.dialectExtras === undefined ? {} : { dialectExtras: hub.dialectExtras }),
    ...(serviceTier === undefined ? {} : { serviceTier }),
    ...(bookedOutputTokens === undefined ? {} : { bookedOutputTokens }),
    ...(dialectBody === undefined ? {} : { dialectBody }),
  };
}

/** What Google's translation sends of a normalized request, in the shape tests write it. */
export interface GoogleView {
  contents: Array<{ role: "user" | "model"; parts: Array<Record<string, unknown>> }>;
  generationConfig: Record<string, unknown>;
  extras: { tools?: unknown[]; toolConfig?: Record<string, unknown>; safetySettings?: unknown[] };
}

/** The request with Google's view of it beside its own fields (the hub's words). */
export function withGoogleView<T extends NormalizedRequest>(req: T): T & GoogleView {
  const body = generateContentBody({
    model: req.model,
    messages: req.messages,
    options: req.options,
    ...(req.tools === undefined ? {} : { tools: req.tools }),
    ...(req.toolChoice === undefined ? {} : { toolChoice: req.toolChoice }),
    ...(req.dialectExtras === undefined ? {} : { dialectExtras: req.dialectExtras }),
  });
  const { contents, generationConfig, tools, toolConfig, safetySettings } = body as Record<string, never>;
  return {
    ...req,
    contents,
    generationConfig: generationConfig ?? {},
    extras: {
      ...(tools === undefined ? {} : { tools }),
      ...(toolConfig === undefined ? {} : { toolConfig }),
      ...(safetySettings === undefined ? {} : { safetySettings }),
    },
  };
}
