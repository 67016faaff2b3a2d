// Validation of generateContent / countTokens bodies and the deterministic answers.
// Validation mirrors the 400s Google gives for mistakes a gateway can make (unknown field names,
// roles other than user/model, system instructions, JSON mode, tools or thinking sent to Gemma,
// unreadable images, oversize input), so the gateway meets them in tests rather than in production.

import type { ModelSpec } from './config.ts';
import { invalidArgument, invalidJson, type SimAnswer } from './errors.ts';
import { checkSafetySettings, parseGenerationConfig, type GenerationOptions } from './generation-config.ts';
import { UNREADABLE_IMAGE_MESSAGE } from './images.ts';
import { valueForSchema } from '../sim-core/schema-values.ts';
import { countRequestTokens, countRequestTokensByModality, hasUnreadableImage, tokensForText, truncateToTokens } from './tokens.ts';
import { chooseFunctionCall, parseTools, type FunctionCall, type ToolSetup } from './tools.ts';
import { field, isObject, snake } from './json-fields.ts';

export interface GenerateRequest extends GenerationOptions {
  contents: unknown[];
  systemInstruction: unknown;
  /** Function declarations and calling mode; undefined without tools. */
  tools: ToolSetup | undefined;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; answer: SimAnswer };

// GenerateContentRequest fields, camelCase and snake_case (proto JSON accepts both).
const GENERATE_FIELDS = new Set(
  [
    'model', 'contents', 'tools', 'toolConfig', 'safetySettings', 'systemInstruction', 'generationConfig',
    'cachedContent', 'labels', 'serviceTier', 'store', 'continuationToken',
  ].flatMap((f) => [f, snake(f)]),
);
const COUNT_FIELDS = new Set(['contents', 'generateContentRequest', 'generate_content_request']);

function unknownField(body: Record<string, unknown>, allowed: Set<string>): SimAnswer | undefined {
  const unknown = Object.keys(body).find((k) => !allowed.has(k));
  return unknown === undefined ? undefined : invalidJson(`Unknown name "${unknown}": Cannot find field.`);
}

function checkContents(contents: unknown): SimAnswer | undefined {
  if (contents === undefined || contents === null || (Array.isArray(contents) && contents.length === 0)) {
    return invalidArgument('* GenerateContentRequest.contents: contents is not specified\n');
  }
  if (!Array.isArray(contents)) return invalidJson(`Invalid value at 'contents' (type.googleapis.com/google.ai.generativelanguage.v1beta.Content), ${JSON.stringify(contents)}`);
  for (const [i, content] of contents.entries()) {
    if (!isObject(content)) return invalidJson(`Invalid value at 'contents[${i}]'`);
    const role = content.role;
    if (role !== undefined && role !== '' && role !== 'user' && role !== 'model') {
      return invalidArgument('Please use a valid role: user, model.');
    }
    if (!Array.isArray(content.parts) || content.parts.length === 0) {
      return invalidArgument(`* GenerateContentRequest.contents[${i}].parts: contents.parts must not be empty.\n`);
    }
  }
  return undefined;
}

function unreadableImage(contents: unknown, systemInstruction?: unknown): SimAnswer | undefined {
  return hasUnreadableImage(contents, systemInstruction) ? invalidArgument(UNREADABLE_IMAGE_MESSAGE) : undefined;
}

export function parseGenerateRequest(body: unknown, model: string, spec: ModelSpec): Parsed<GenerateRequest> {
  if (!isObject(body)) return { ok: false, answer: invalidJson('Unknown name "": Root element must be a message.') };
  const systemInstruction = field(body, 'systemInstruction');
  const bad =
    unknownField(body, GENERATE_FIELDS) ??
    checkContents(body.contents) ??
    unreadableImage(body.contents, systemInstruction) ??
    checkSafetySettings(field(body, 'safetySettings'));
  if (bad) return { ok: false, answer: bad };

  if (systemInstruction != null && !spec.supportsSystemInstruction) {
    return { ok: false, answer: invalidArgument(`Developer instruction is not enabled for models/${model}`) };
  }
  const options = parseGenerationConfig(field(body, 'generationConfig'), model, spec);
  if (!options.ok) return options;
  const tools = parseTools(body, model, spec);
  if (!tools.ok) return tools;

  return {
    ok: true,
    value: {
      ...options.value,
      contents: body.contents as unknown[],
      systemInstruction: systemInstruction ?? undefined,
      tools: tools.value,
    },
  };
}

export function inputTokens(req: GenerateRequest): number {
  return countRequestTokens(req.contents, req.systemInstruction);
}

export function checkInputLimit(tokens: number, spec: ModelSpec): SimAnswer | undefined {
  if (tokens <= spec.inputTokenLimit) return undefined;
  return invalidArgument(
    `The input token count (${tokens}) exceeds the maximum number of tokens allowed (${spec.inputTokenLimit}).`,
  );
}

/** Counts tokens for a countTokens body: `{contents}` or `{generateContentRequest}`. */
export function parseCountTokens(body: unknown): Parsed<number> {
  if (!isObject(body)) return { ok: false, answer: invalidJson('Unknown name "": Root element must be a message.') };
  const bad = unknownField(body, COUNT_FIELDS);
  if (bad) return { ok: false, answer: bad };
  const inner = field(body, 'generateContentRequest');
  if (inner !== undefined) {
    if (!isObject(inner)) return { ok: false, answer: invalidJson("Invalid value at 'generate_content_request'") };
    const innerBad =
      unknownField(inner, GENERATE_FIELDS) ??
      checkContents(inner.contents) ??
      unreadableImage(inner.contents, field(inner, 'systemInstruction'));
    if (innerBad) return { ok: false, answer: innerBad };
    return { ok: true, value: countRequestTokens(inner.contents, field(inner, 'systemInstruction')) };
  }
  const contentsBad = checkContents(body.contents) ?? unreadableImage(body.contents);
  if (contentsBad) return { ok: false, answer: contentsBad };
  return { ok: true, value: countRequestTokens(body.contents) };
}

/** Text of the last turn not written by the model. */
function lastUserText(contents: unknown[]): string {
  for (let i = contents.length - 1; i >= 0; i--) {
    const c = contents[i] as { role?: unknown; parts?: unknown[] };
    if (c.role === 'model') continue;
    return (c.parts ?? [])
      .map((p) => (isObject(p) && typeof p.text === 'string' ? p.text : ''))
      .join('');
  }
  return '';
}

/** Strings in a schema-shaped answer: the start of the question. */
const SCHEMA_STRING_CHARS = 40;
const ECHO_CHARS = 200;

function excerpt(text: string, chars: number): string {
  return Array.from(text).slice(0, chars).join('');
}

/**
 * The full text of candidate `index` before maxOutputTokens: a pure function of model and input.
 * Candidates after the first say their index, so a client can tell them apart.
 */
export function answerText(model: string, req: GenerateRequest, index = 0): string {
  const question = lastUserText(req.contents);
  if (req.responseSchema !== undefined) {
    return JSON.stringify(valueForSchema(req.responseSchema, { strings: excerpt(question, SCHEMA_STRING_CHARS) }));
  }
  const echo = excerpt(question, ECHO_CHARS);
  if (req.jsonMode) return JSON.stringify(index === 0 ? { model, echo } : { model, echo, candidate: index });
  return index === 0 ? `sim(${model}): ${echo}` : `sim(${model})#${index}: ${echo}`;
}

export interface Generated {
  /** Answer pieces; one for generateContent, several for streaming. */
  chunks: Array<Record<string, unknown>>;
}

interface CandidateText {
  pieces: string[];
  finishReason: 'STOP' | 'MAX_TOKENS';
}

/** Splits `text` into exactly `count` consecutive pieces of near-equal length (some may be ''). */
function split(text: string, count: number): string[] {
  const chars = Array.from(text);
  return Array.from({ length: count }, (_, k) =>
    chars.slice(Math.floor((k * chars.length) / count), Math.floor(((k + 1) * chars.length) / count)).join(''),
  );
}

interface PromptUsage {
  tokens: number;
  details: Array<{ modality: string; tokenCount: number }>;
  thoughts: number;
  cached: number;
}

/** The input side of usageMetadata, the same for every chunk of an answer. */
function promptUsage(req: GenerateRequest, promptTokens: number): PromptUsage {
  const { image } = countRequestTokensByModality(req.contents, req.systemInstruction);
  const details = [{ modality: 'TEXT', tokenCount: promptTokens - image }];
  if (image > 0) details.push({ modality: 'IMAGE', tokenCount: image });
  return { tokens: promptTokens, details, thoughts: req.thoughtsTokens, cached: Math.min(req.cachedTokens, promptTokens) };
}

function usage(prompt: PromptUsage, candidatesTokenCount: number): Record<string, unknown> {
  const u: Record<string, unknown> = { promptTokenCount: prompt.tokens, candidatesTokenCount };
  if (prompt.thoughts > 0) u.thoughtsTokenCount = prompt.thoughts;
  if (prompt.cached > 0) u.cachedContentTokenCount = prompt.cached;
  u.totalTokenCount = prompt.tokens + candidatesTokenCount + prompt.thoughts;
  u.promptTokensDetails = prompt.details;
  return u;
}

/** A function call is one candidate, one part, one chunk (Google does not split a call). */
function functionCallAnswer(call: FunctionCall, model: string, req: GenerateRequest, promptTokens: number, responseId: string): Generated {
  const part = { functionCall: call };
  const candidate = { content: { parts: [part], role: 'model' }, finishReason: 'STOP', index: 0 };
  const outputTokens = tokensForText(JSON.stringify(part));
  const u = usage(promptUsage(req, promptTokens), outputTokens);
  return { chunks: [{ candidates: [candidate], usageMetadata: u, modelVersion: model, responseId }] };
}

/**
 * Builds the answer as `pieces` chunks (1 = a plain generateContent body). Each chunk has the
 * generateContent shape and carries a piece of every candidate; concatenating a candidate's pieces
 * gives its non-streamed text. Every chunk's usage counts the answer so far (all candidates, each
 * by the token rule); the last chunk carries each candidate's finishReason.
 */
export function generate(
  model: string,
  spec: ModelSpec,
  req: GenerateRequest,
  promptTokens: number,
  responseId: string,
  pieces = 1,
): Generated {
  const call = chooseFunctionCall(req.tools, lastUserText(req.contents));
  if (call) return functionCallAnswer(call, model, req, promptTokens, responseId);

  const limit = Math.min(req.maxOutputTokens ?? spec.outputTokenLimit, spec.outputTokenLimit);
  const texts = Array.from({ length: req.candidateCount }, (_, i) => truncateToTokens(answerText(model, req, i), limit));
  const longest = Math.max(...texts.map((t) => Array.from(t.text).length));
  const count = Math.max(1, Math.min(pieces, longest));
  const candidates: CandidateText[] = texts.map((t) => ({
    pieces: split(t.text, count),
    finishReason: t.truncated ? 'MAX_TOKENS' : 'STOP',
  }));

  const prompt = promptUsage(req, promptTokens);
  const soFar = candidates.map(() => '');
  const chunks = Array.from({ length: count }, (_, k) => {
    const last = k === count - 1;
    const parts = candidates.map((c, i) => {
      soFar[i] += c.pieces[k]!;
      const candidate: Record<string, unknown> = { content: { parts: [{ text: c.pieces[k] }], role: 'model' }, index: i };
      if (last) candidate.finishReason = c.finishReason;
      return candidate;
    });
    const outputTokens = soFar.reduce((sum, t) => sum + tokensForText(t), 0);
    return { candidates: parts, usageMetadata: usage(prompt, outputTokens), modelVersion: model, responseId };
  });
  return { chunks };
}
