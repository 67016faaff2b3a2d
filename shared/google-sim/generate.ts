// Validation of generateContent / countTokens bodies and the deterministic answers.
// Validation mirrors the 400s Google gives for mistakes a gateway can make (unknown field names,
// roles other than user/model, system instructions or JSON mode sent to Gemma, oversize input),
// so the gateway meets them in tests rather than in production.

import type { ModelSpec } from './config.ts';
import { invalidArgument, invalidJson, type SimAnswer } from './errors.ts';
import { countRequestTokens, tokensForText, truncateToTokens } from './tokens.ts';

export interface GenerateRequest {
  contents: unknown[];
  systemInstruction: unknown;
  /** undefined when absent or 0 (proto3: 0 means "not set"). */
  maxOutputTokens: number | undefined;
  jsonMode: boolean;
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

function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Reads a field by its camelCase name or its snake_case alias. */
function field(obj: Record<string, unknown>, name: string): unknown {
  return obj[name] ?? obj[snake(name)];
}

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

export function parseGenerateRequest(body: unknown, model: string, spec: ModelSpec): Parsed<GenerateRequest> {
  if (!isObject(body)) return { ok: false, answer: invalidJson('Unknown name "": Root element must be a message.') };
  const bad = unknownField(body, GENERATE_FIELDS) ?? checkContents(body.contents);
  if (bad) return { ok: false, answer: bad };

  const systemInstruction = field(body, 'systemInstruction');
  if (systemInstruction != null && !spec.supportsSystemInstruction) {
    return { ok: false, answer: invalidArgument(`Developer instruction is not enabled for models/${model}`) };
  }

  const config = field(body, 'generationConfig') ?? {};
  if (!isObject(config)) return { ok: false, answer: invalidJson("Invalid value at 'generation_config'") };
  const jsonMode =
    field(config, 'responseMimeType') === 'application/json' ||
    field(config, 'responseSchema') != null ||
    field(config, 'responseJsonSchema') != null;
  if (jsonMode && !spec.supportsJsonMode) {
    return { ok: false, answer: invalidArgument(`JSON mode is not enabled for models/${model}`) };
  }
  const max = field(config, 'maxOutputTokens');
  if (max !== undefined && !(Number.isInteger(max) && (max as number) >= 0)) {
    return { ok: false, answer: invalidJson(`Invalid value at 'generation_config.max_output_tokens' (TYPE_INT32), ${JSON.stringify(max)}`) };
  }

  return {
    ok: true,
    value: {
      contents: body.contents as unknown[],
      systemInstruction: systemInstruction ?? undefined,
      maxOutputTokens: max ? (max as number) : undefined,
      jsonMode,
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
    const innerBad = unknownField(inner, GENERATE_FIELDS) ?? checkContents(inner.contents);
    if (innerBad) return { ok: false, answer: innerBad };
    return { ok: true, value: countRequestTokens(inner.contents, field(inner, 'systemInstruction')) };
  }
  const contentsBad = checkContents(body.contents);
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

/** The full answer before maxOutputTokens: a pure function of model and input. */
export function answerText(model: string, req: GenerateRequest): string {
  const excerpt = Array.from(lastUserText(req.contents)).slice(0, 200).join('');
  return req.jsonMode ? JSON.stringify({ model, echo: excerpt }) : `sim(${model}): ${excerpt}`;
}

export interface Generated {
  /** Answer pieces; one for generateContent, several for streaming. */
  chunks: Array<Record<string, unknown>>;
  text: string;
  finishReason: 'STOP' | 'MAX_TOKENS';
}

/**
 * Builds the answer as `pieces` chunks (1 = a plain generateContent body). Each chunk has the
 * generateContent shape; concatenating their texts gives the non-streamed text, and the last
 * chunk carries finishReason and the final usageMetadata.
 */
export function generate(
  model: string,
  spec: ModelSpec,
  req: GenerateRequest,
  promptTokens: number,
  responseId: string,
  pieces = 1,
): Generated {
  const limit = Math.min(req.maxOutputTokens ?? spec.outputTokenLimit, spec.outputTokenLimit);
  const { text, truncated } = truncateToTokens(answerText(model, req), limit);
  const finishReason = truncated ? 'MAX_TOKENS' : 'STOP';
  const chars = Array.from(text);
  const size = Math.max(1, Math.ceil(chars.length / pieces));
  const parts: string[] = [];
  for (let i = 0; i < chars.length; i += size) parts.push(chars.slice(i, i + size).join(''));
  if (parts.length === 0) parts.push('');

  let soFar = '';
  const chunks = parts.map((piece, i) => {
    soFar += piece;
    const last = i === parts.length - 1;
    const candidatesTokenCount = tokensForText(soFar);
    const candidate: Record<string, unknown> = { content: { parts: [{ text: piece }], role: 'model' }, index: 0 };
    if (last) candidate.finishReason = finishReason;
    return {
      candidates: [candidate],
      usageMetadata: {
        promptTokenCount: promptTokens,
        candidatesTokenCount,
        totalTokenCount: promptTokens + candidatesTokenCount,
        promptTokensDetails: [{ modality: 'TEXT', tokenCount: promptTokens }],
      },
      modelVersion: model,
      responseId,
    };
  });
  return { chunks, text, finishReason };
}
