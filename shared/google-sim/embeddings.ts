// Google's embedding methods as it answers them: `models/{m}:embedContent` ({content, taskType?,
// title?, outputDimensionality?} → {embedding: {values}}) and `:batchEmbedContents` ({requests: [...]},
// at most 100, each naming the same model → {embeddings: [{values}]}). Each request of a batch is a
// request of the model's RPM and RPD, its tokens in TPM, as Google counts it (measured by
// garrytan/gbrain#1922: a 100-item batch is 100 requests). No token count in the answer, as Google's.
import { embeddingVector } from '../sim-core/embedding-vectors.ts';
import { isObject } from '../sim-core/json.ts';
import { tokensForText } from '../sim-core/text-tokens.ts';
import * as errors from './errors.ts';

export const MAX_BATCH = 100;

export interface EmbedItem {
  text: string;
  tokens: number;
  dimensions: number;
}

type Parsed = { ok: true; value: EmbedItem[] } | { ok: false; answer: errors.SimAnswer };

function item(raw: unknown, model: string, dimensions: number, where: string): EmbedItem | errors.SimAnswer {
  if (!isObject(raw) || !isObject(raw.content) || !Array.isArray(raw.content.parts)) {
    return errors.invalidArgument(`* ${where}content: content must be provided with parts.`);
  }
  if (raw.model !== undefined && raw.model !== `models/${model}`) {
    return errors.invalidArgument(`* ${where}model: the model of every request must be models/${model}.`);
  }
  const text = raw.content.parts.map((p) => (isObject(p) && typeof p.text === 'string' ? p.text : '')).join('');
  if (text === '') return errors.invalidArgument(`* ${where}content: contents is not specified`);
  let size = dimensions;
  if (raw.outputDimensionality !== undefined) {
    const asked = raw.outputDimensionality;
    if (!Number.isInteger(asked) || (asked as number) < 1 || (asked as number) > dimensions) {
      return errors.invalidArgument(`* ${where}output_dimensionality: must be at most ${dimensions}.`);
    }
    size = asked as number;
  }
  return { text, tokens: tokensForText(text), dimensions: size };
}

export function parseEmbed(body: unknown, model: string, dimensions: number, batch: boolean): Parsed {
  if (!batch) {
    const one = item(body, model, dimensions, '');
    return 'status' in one ? { ok: false, answer: one } : { ok: true, value: [one] };
  }
  if (!isObject(body) || !Array.isArray(body.requests) || body.requests.length === 0) {
    return { ok: false, answer: errors.invalidArgument('* BatchEmbedContentsRequest.requests: requests must be provided.') };
  }
  if (body.requests.length > MAX_BATCH) {
    return { ok: false, answer: errors.invalidArgument(`* BatchEmbedContentsRequest.requests: at most ${MAX_BATCH} requests can be in one batch\n`) };
  }
  const items: EmbedItem[] = [];
  for (const [i, raw] of body.requests.entries()) {
    const one = item(raw, model, dimensions, `BatchEmbedContentsRequest.requests[${i}].`);
    if ('status' in one) return { ok: false, answer: one };
    items.push(one);
  }
  return { ok: true, value: items };
}

export function embedAnswer(model: string, items: EmbedItem[], batch: boolean): Record<string, unknown> {
  const vectors = items.map((i) => ({ values: embeddingVector(model, i.text, i.dimensions) }));
  return batch ? { embeddings: vectors } : { embedding: vectors[0] };
}
