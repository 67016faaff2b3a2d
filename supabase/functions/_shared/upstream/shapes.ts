// The Gemini REST shape of the request the port still carries (v1beta generateContent, camelCase as
// Google's own SDKs send it); the answer is the hub's (hub.ts). Fields the gateway does not interpret are carried as they came, so a new Gemini
// field reaches Google without a code change.
import type { ServiceTier } from "../vocabulary.ts";
import type { DialectBody } from "./hub.ts";

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
  /**
   * The output tokens the reservation booked for this call where the caller named no cap (the model
   * row's booked answer): a provider that requires a cap (Anthropic's max_tokens) sends it.
   */
  bookedOutputTokens?: number;
  /**
   * The caller's own body, when it came in this provider's dialect: the provider sends it as it came
   * (only the gateway's fields set) instead of translating the hub shape. Only a provider of that
   * dialect is given one (model/adapt.ts).
   */
  dialectBody?: DialectBody;
}

