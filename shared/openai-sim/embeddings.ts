// POST /v1/embeddings as OpenAI answers it: `input` a string, strings, token ids or arrays of them (at
// most 2048, none empty, each at most 8192 tokens), `dimensions` only for the text-embedding-3 models
// and at most their size, `encoding_format` float or base64; the answer a list of `embedding` objects
// in input order and `usage` (prompt_tokens = total_tokens). One call is one request of the RPM however
// many inputs it holds; its input tokens are its TPM (nothing is booked for output).
import { embeddingVector, float32Base64 } from '../sim-core/embedding-vectors.ts';
import { isObject } from '../sim-core/json.ts';
import { tokensForText } from '../sim-core/text-tokens.ts';
import * as errors from './errors.ts';

export const MAX_EMBEDDING_INPUTS = 2048;
export const MAX_EMBEDDING_INPUT_TOKENS = 8192;

export interface EmbeddingRequest {
  inputs: Array<string | number[]>;
  dimensions: number;
  base64: boolean;
  tokens: number;
}

type Parsed = { ok: true; value: EmbeddingRequest } | { ok: false; answer: errors.SimAnswer };

export function parseEmbeddingRequest(body: unknown, modelDimensions: number, shortenable: boolean): Parsed {
  const bad = (message: string, param: string | null = null) => ({ ok: false as const, answer: errors.badRequest(message, param) });
  if (!isObject(body)) return bad('The body must be a JSON object.');
  const raw = body.input;
  const isTokens = (v: unknown): v is number[] => Array.isArray(v) && v.length > 0 && v.every((t) => Number.isInteger(t) && t >= 0);
  let inputs: Array<string | number[]>;
  if (typeof raw === 'string') inputs = [raw];
  else if (isTokens(raw)) inputs = [raw];
  else if (Array.isArray(raw) && raw.length > 0 && raw.every((i) => typeof i === 'string' || isTokens(i))) inputs = raw as Array<string | number[]>;
  else return bad("'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.", 'input');
  if (inputs.length > MAX_EMBEDDING_INPUTS) {
    return bad(`'$.input' is invalid: an array of at most ${MAX_EMBEDDING_INPUTS} inputs is allowed.`, 'input');
  }
  if (inputs.some((i) => i === '')) return bad("'$.input' is invalid: an input may not be an empty string.", 'input');
  const counts = inputs.map((i) => (typeof i === 'string' ? tokensForText(i) : i.length));
  if (counts.some((n) => n > MAX_EMBEDDING_INPUT_TOKENS)) {
    return bad(`This model's maximum context length is ${MAX_EMBEDDING_INPUT_TOKENS} tokens, however you requested more in one input.`, 'input');
  }
  let dimensions = modelDimensions;
  if (body.dimensions !== undefined && body.dimensions !== null) {
    const asked = body.dimensions;
    if (!shortenable) return bad('This model does not support specifying dimensions.', 'dimensions');
    if (!Number.isInteger(asked) || (asked as number) < 1 || (asked as number) > modelDimensions) {
      return bad(`Invalid value for 'dimensions' = ${String(asked)}. Must be at most ${modelDimensions}.`, 'dimensions');
    }
    dimensions = asked as number;
  }
  const format = body.encoding_format ?? 'float';
  if (format !== 'float' && format !== 'base64') return bad("'encoding_format' must be 'float' or 'base64'.", 'encoding_format');
  return { ok: true, value: { inputs, dimensions, base64: format === 'base64', tokens: counts.reduce((a, b) => a + b, 0) } };
}

export function embeddingList(model: string, request: EmbeddingRequest): Record<string, unknown> {
  return {
    object: 'list',
    data: request.inputs.map((input, index) => {
      const vector = embeddingVector(model, typeof input === 'string' ? input : input.join(' '), request.dimensions);
      return { object: 'embedding', index, embedding: request.base64 ? float32Base64(vector) : vector };
    }),
    model,
    usage: { prompt_tokens: request.tokens, total_tokens: request.tokens },
  };
}
