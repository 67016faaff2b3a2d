// The Gemini REST shapes the gateway sends and receives (v1beta generateContent, camelCase as Google's
// own SDKs send it). Fields the gateway does not interpret are carried as they came, so a new Gemini
// field reaches Google without a code change.
import type { ServiceTier } from "../vocabulary.ts";

/**
 * One part of a turn: text, an inline image (`inlineData`), a function call or its response. The
 * gateway reads `text` and `inlineData`; every other field is forwarded unchanged.
 */
export interface Part {
  text?: string;
  /** Gemini 2.5 marks its thoughts with `thought: true`; they are not part of the answer's text. */
  thought?: boolean;
  inlineData?: { mimeType: string; data: string };
  functionCall?: { name: string; args?: Record<string, unknown>; id?: string };
  functionResponse?: { name: string; response: Record<string, unknown>; id?: string };
  [field: string]: unknown;
}

export interface Content {
  role: "user" | "model";
  parts: Part[];
}

/** The text-only part the gateway itself writes (prompts, folded system instructions). */
export interface TextPart extends Part {
  text: string;
}

/** generationConfig: the fields the gateway checks are typed; the rest pass through. */
export interface GenerationConfig {
  temperature?: number;
  maxOutputTokens?: number;
  topP?: number;
  topK?: number;
  stopSequences?: string[];
  responseMimeType?: string;
  responseSchema?: unknown;
  responseJsonSchema?: unknown;
  candidateCount?: number;
  seed?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  thinkingConfig?: { thinkingBudget?: number; includeThoughts?: boolean; [field: string]: unknown };
  [field: string]: unknown;
}

/** The request-level fields forwarded as the caller gave them (function calling, safety). */
export interface RequestExtras {
  tools?: unknown[];
  toolConfig?: Record<string, unknown>;
  safetySettings?: unknown[];
}

/** What is sent to Google for one request. */
export interface UpstreamRequest extends RequestExtras {
  model: string;
  contents: Content[];
  systemInstruction?: string;
  generationConfig: GenerationConfig;
  /** Google's service tier for this call (the body's serviceTier); absent: standard, nothing sent. */
  serviceTier?: ServiceTier;
  /** For an OpenAI model only: the caller's own Chat Completions body (never sent to Google). */
  openAiBody?: Record<string, unknown>;
}

/** One generateContent answer, or one chunk of a streamed one, as Google sent it. */
export type UpstreamAnswer = Record<string, unknown>;
