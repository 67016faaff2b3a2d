// generationConfig and safetySettings: the knobs of a generate request. Google refuses a knob of the
// wrong JSON type ("Invalid value at ..."), a feature the model lacks (JSON mode, several
// candidates, thinking on Gemma), and both schema dialects at once; the simulator does the same so
// the gateway meets those 400s in tests. Knobs it does not simulate (seed, penalties, logprobs,
// safety thresholds, sampling) are type-checked and otherwise ignored.

import type { ModelSpec } from './config.ts';
import { invalidArgument, invalidJson, type SimAnswer } from './errors.ts';
import { field, isObject, snake } from './json-fields.ts';

export interface GenerationOptions {
  /** undefined when absent or 0 (proto3: 0 means "not set"). */
  maxOutputTokens: number | undefined;
  /** The answer is JSON: responseMimeType application/json, or a schema. */
  jsonMode: boolean;
  /** responseSchema (OpenAPI subset) or responseJsonSchema (JSON Schema) when one is set. */
  responseSchema: unknown;
  /** 1 unless candidateCount asks for more. */
  candidateCount: number;
  /** usageMetadata.thoughtsTokenCount of the answer (0: no thoughts, field left out). */
  thoughtsTokens: number;
  /** usageMetadata.cachedContentTokenCount of the answer, before it is capped at the prompt (the model's cachedTokens). */
  cachedTokens: number;
}

/** Thought tokens reported when thinking is on with no smaller budget (a small fixed number). */
export const SIM_THOUGHTS_TOKENS = 8;

type Parsed<T> = { ok: true; value: T } | { ok: false; answer: SimAnswer };

type Kind = 'TYPE_INT32' | 'TYPE_FLOAT' | 'TYPE_BOOL' | 'TYPE_STRING';

const FITS: Record<Kind, (v: unknown) => boolean> = {
  TYPE_INT32: (v) => Number.isInteger(v),
  TYPE_FLOAT: (v) => typeof v === 'number' && Number.isFinite(v),
  TYPE_BOOL: (v) => typeof v === 'boolean',
  TYPE_STRING: (v) => typeof v === 'string',
};

/** Scalar generationConfig fields and their proto types. */
const SCALARS: Array<[string, Kind]> = [
  ['maxOutputTokens', 'TYPE_INT32'],
  ['candidateCount', 'TYPE_INT32'],
  ['temperature', 'TYPE_FLOAT'],
  ['topP', 'TYPE_FLOAT'],
  ['topK', 'TYPE_INT32'],
  ['seed', 'TYPE_INT32'],
  ['presencePenalty', 'TYPE_FLOAT'],
  ['frequencyPenalty', 'TYPE_FLOAT'],
  ['responseLogprobs', 'TYPE_BOOL'],
  ['logprobs', 'TYPE_INT32'],
  ['responseMimeType', 'TYPE_STRING'],
];

/** GenerationConfig's fields (v1beta): any other name is refused, as Google's JSON parser does. */
const KNOWN_FIELDS = new Set([
  'stopSequences', 'responseMimeType', 'responseSchema', 'responseJsonSchema', '_responseJsonSchema',
  'responseModalities', 'candidateCount', 'maxOutputTokens', 'temperature', 'topP', 'topK', 'seed',
  'presencePenalty', 'frequencyPenalty', 'responseLogprobs', 'logprobs', 'enableEnhancedCivicAnswers',
  'speechConfig', 'thinkingConfig', 'imageConfig', 'mediaResolution',
].flatMap((f) => [f, snake(f)]));

function unknownField(config: Record<string, unknown>): SimAnswer | undefined {
  const name = Object.keys(config).find((k) => !KNOWN_FIELDS.has(k));
  return name === undefined
    ? undefined
    : invalidJson(`Invalid JSON payload received. Unknown name "${name}" at 'generation_config': Cannot find field.`);
}

function wrongType(path: string, kind: string, value: unknown): SimAnswer {
  return invalidJson(`Invalid value at '${path}' (${kind}), ${JSON.stringify(value)}`);
}

/** A scalar field of the wrong type (or a negative count) → Google's "Invalid value at ...". */
function checkScalars(config: Record<string, unknown>): SimAnswer | undefined {
  for (const [name, kind] of SCALARS) {
    const v = field(config, name);
    if (v === undefined || v === null) continue;
    const path = `generation_config.${snake(name)}`;
    if (!FITS[kind](v)) return wrongType(path, kind, v);
    if ((name === 'maxOutputTokens' || name === 'candidateCount') && (v as number) < 0) return wrongType(path, kind, v);
  }
  const stops = field(config, 'stopSequences');
  if (stops !== undefined && !(Array.isArray(stops) && stops.every((s) => typeof s === 'string'))) {
    return wrongType('generation_config.stop_sequences', 'TYPE_STRING', stops);
  }
  return undefined;
}

function parseThinking(config: Record<string, unknown>, model: string, spec: ModelSpec): Parsed<number> {
  const thinking = field(config, 'thinkingConfig');
  if (thinking === undefined || thinking === null) return { ok: true, value: spec.defaultThoughtsTokens };
  if (!isObject(thinking)) {
    return { ok: false, answer: wrongType('generation_config.thinking_config', 'type.googleapis.com/google.ai.generativelanguage.v1beta.ThinkingConfig', thinking) };
  }
  const budget = field(thinking, 'thinkingBudget');
  const include = field(thinking, 'includeThoughts');
  const level = field(thinking, 'thinkingLevel');
  if (budget !== undefined && !Number.isInteger(budget)) return { ok: false, answer: wrongType('generation_config.thinking_config.thinking_budget', 'TYPE_INT32', budget) };
  if (include !== undefined && typeof include !== 'boolean') return { ok: false, answer: wrongType('generation_config.thinking_config.include_thoughts', 'TYPE_BOOL', include) };
  if (level !== undefined && typeof level !== 'string') return { ok: false, answer: wrongType('generation_config.thinking_config.thinking_level', 'TYPE_STRING', level) };
  if (!spec.supportsThinking) return { ok: false, answer: invalidArgument(`Thinking is not enabled for models/${model}`) };
  // 0 turns thinking off; -1 (dynamic) or a level turns it on; a positive budget caps it.
  if (budget === 0) return { ok: true, value: 0 };
  if (typeof budget === 'number' && budget > 0) return { ok: true, value: Math.min(budget, SIM_THOUGHTS_TOKENS) };
  if (budget === -1 || level !== undefined) return { ok: true, value: SIM_THOUGHTS_TOKENS };
  return { ok: true, value: spec.defaultThoughtsTokens };
}

export function parseGenerationConfig(raw: unknown, model: string, spec: ModelSpec): Parsed<GenerationOptions> {
  const config = raw ?? {};
  if (!isObject(config)) return { ok: false, answer: invalidJson("Invalid value at 'generation_config'") };
  const bad = unknownField(config) ?? checkScalars(config);
  if (bad) return { ok: false, answer: bad };

  const schema = field(config, 'responseSchema');
  const jsonSchema = field(config, 'responseJsonSchema');
  if (schema != null && jsonSchema != null) {
    return { ok: false, answer: invalidArgument('response_schema must not be set when response_json_schema is set.') };
  }
  const jsonMode = field(config, 'responseMimeType') === 'application/json' || schema != null || jsonSchema != null;
  if (jsonMode && !spec.supportsJsonMode) {
    return { ok: false, answer: invalidArgument(`JSON mode is not enabled for models/${model}`) };
  }

  const count = (field(config, 'candidateCount') as number | undefined) || 1; // 0 = not set
  if (count > 1 && spec.maxCandidates <= 1) {
    return { ok: false, answer: invalidArgument(`Multiple candidates is not enabled for models/${model}`) };
  }
  if (count > spec.maxCandidates) {
    return { ok: false, answer: invalidArgument(`* GenerateContentRequest.generation_config.candidate_count: must be in the range [1, ${spec.maxCandidates}].\n`) };
  }

  const thinking = parseThinking(config, model, spec);
  if (!thinking.ok) return thinking;

  const max = field(config, 'maxOutputTokens') as number | undefined;
  return {
    ok: true,
    value: {
      maxOutputTokens: max ? max : undefined,
      jsonMode,
      responseSchema: schema ?? jsonSchema ?? undefined,
      candidateCount: count,
      thoughtsTokens: thinking.value,
      cachedTokens: spec.cachedTokens ?? 0,
    },
  };
}

/** safetySettings: a list of {category, threshold} strings; anything else is Google's 400. */
export function checkSafetySettings(raw: unknown): SimAnswer | undefined {
  if (raw === undefined || raw === null) return undefined;
  const type = 'type.googleapis.com/google.ai.generativelanguage.v1beta.SafetySetting';
  if (!Array.isArray(raw)) return wrongType('safety_settings', type, raw);
  for (const [i, s] of raw.entries()) {
    if (!isObject(s)) return wrongType(`safety_settings[${i}]`, type, s);
    // null is proto JSON's "not set".
    const category = s.category;
    const threshold = s.threshold;
    if (category != null && typeof category !== 'string') {
      return wrongType(`safety_settings[${i}].category`, 'type.googleapis.com/google.ai.generativelanguage.v1beta.HarmCategory', category);
    }
    if (threshold != null && typeof threshold !== 'string') {
      return wrongType(`safety_settings[${i}].threshold`, 'type.googleapis.com/google.ai.generativelanguage.v1beta.SafetySetting.HarmBlockThreshold', threshold);
    }
  }
  return undefined;
}
