// Gemini's generationConfig, tools, toolConfig and safetySettings as the gateway checks them, one set of
// rules for Google's routes and the native body (whose fields they are by name, the bot's contract).
import { z } from "zod";

const MIME_TYPE = /^[a-z]+\/[A-Za-z0-9.+-]+$/;

/**
 * Gemini's generationConfig: the fields the gateway reads or that are easy to get wrong are checked;
 * any other field is forwarded as given, so a field Google adds later needs no release of the gateway.
 */
export const generationConfigSchema = z.looseObject({
  temperature: z.number().min(0).max(2).optional(),
  maxOutputTokens: z.number().int().min(1).max(1_000_000).optional(),
  topP: z.number().min(0).max(1).optional(),
  topK: z.number().int().min(1).max(1000).optional(),
  stopSequences: z.array(z.string().min(1).max(200)).max(5).optional(),
  responseMimeType: z.string().regex(MIME_TYPE, "must be a MIME type such as text/plain").optional(),
  responseSchema: z.record(z.string(), z.unknown()).optional(),
  responseJsonSchema: z.record(z.string(), z.unknown()).optional(),
  candidateCount: z.number().int().min(1).max(8).optional(),
  seed: z.number().int().optional(),
  presencePenalty: z.number().optional(),
  frequencyPenalty: z.number().optional(),
  thinkingConfig: z.looseObject({
    thinkingBudget: z.number().int().min(-1).optional(),
    includeThoughts: z.boolean().optional(),
  }).optional(),
}).refine((c) => c.responseSchema === undefined || c.responseJsonSchema === undefined, {
  message: "give responseSchema or responseJsonSchema, not both",
});

/** Function calling and safety settings, as Gemini takes them. */
export const toolsAndSafetySchema = {
  tools: z.array(z.record(z.string(), z.unknown())).max(128).optional(),
  toolConfig: z.record(z.string(), z.unknown()).optional(),
  safetySettings: z.array(z.looseObject({ category: z.string(), threshold: z.string() })).max(32).optional(),
};
