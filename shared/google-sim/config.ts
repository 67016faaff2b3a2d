// Defaults for the simulator: which models exist, their free-tier limits, and the local dev keys.
// Figures follow the project owner's seed table (see /work/shared/research/google-ai.md); they are
// options, not truths about Google, because Google changes them without notice.

import { checkSignatureMode, type ThoughtSignatureMode } from './signatures.ts';

export interface ModelSpec {
  /** Requests per minute, per project. */
  rpm: number;
  /** Input tokens per minute, per project (Google counts input tokens only). */
  tpm: number;
  /** Requests per day, per project; the day ends at midnight America/Los_Angeles. */
  rpd: number;
  inputTokenLimit: number;
  outputTokenLimit: number;
  /** Gemma answers 400 "Developer instruction is not enabled" when this is false. */
  supportsSystemInstruction: boolean;
  /** Gemma answers 400 "JSON mode is not enabled" when this is false. */
  supportsJsonMode: boolean;
  /** `tools` on a model without it: 400 "Function calling is not enabled". */
  supportsTools: boolean;
  /** Highest generationConfig.candidateCount; 1 answers 400 "Multiple candidates is not enabled". */
  maxCandidates: number;
  /** generationConfig.thinkingConfig on a model without it: 400 "Thinking is not enabled". */
  supportsThinking: boolean;
  /**
   * thoughtsTokenCount when the request sends no thinkingConfig. 0 on every model by default (real
   * Gemini 2.5 thinks unasked; set this to simulate it). See README "Thinking".
   */
  defaultThoughtsTokens: number;
  /**
   * usageMetadata.cachedContentTokenCount of every answer (at most its prompt): that much of each
   * prompt is said to have been read from Google's implicit cache. Unset: 0, the field left out.
   */
  cachedTokens?: number;
  /**
   * 'required': answers carry thought signatures and a current turn that replays a function call
   * without its signature is refused, as Gemini 3 does (signatures.ts). Unset or 'off' on every
   * model by default.
   */
  thoughtSignatures?: ThoughtSignatureMode;
  displayName: string;
  /** Reported as `modelVersion` in answers and `version` in the model resource. */
  version: string;
  /**
   * Google no longer serves it: 404 NOT_FOUND on generate, stream and countTokens, absent from
   * models.list (withdrawn.ts). Default false; also settable at run time.
   */
  withdrawn?: boolean;
  /** The model Google names as the replacement in some wordings of its 404 for this one, when withdrawn. */
  replacement?: string;
  /** An embedding model: its vectors' size (it answers embedContent and batchEmbedContents, nothing else). */
  embeddingDimensions?: number;
}

export type ModelOptions = Record<string, Partial<ModelSpec>>;

export const DEFAULT_MODELS: Readonly<Record<string, ModelSpec>> = {
  'gemma-3-27b-it': {
    rpm: 30,
    tpm: 15_000,
    rpd: 14_400,
    inputTokenLimit: 131_072,
    outputTokenLimit: 8_192,
    supportsSystemInstruction: false,
    supportsJsonMode: false,
    supportsTools: false,
    maxCandidates: 1,
    supportsThinking: false,
    defaultThoughtsTokens: 0,
    displayName: 'Gemma 3 27B',
    version: '001',
  },
  // The free tier's embedding limits (100 RPM, 30,000 TPM, 1,000 RPD) and size.
  'gemini-embedding-001': {
    rpm: 100,
    tpm: 30_000,
    rpd: 1_000,
    inputTokenLimit: 2_048,
    outputTokenLimit: 1,
    supportsSystemInstruction: false,
    supportsJsonMode: false,
    supportsTools: false,
    maxCandidates: 1,
    supportsThinking: false,
    defaultThoughtsTokens: 0,
    displayName: 'Gemini Embedding 001',
    version: '001',
    embeddingDimensions: 3072,
  },
  'gemini-2.5-flash': {
    rpm: 5,
    tpm: 250_000,
    rpd: 20,
    inputTokenLimit: 1_048_576,
    outputTokenLimit: 65_536,
    supportsSystemInstruction: true,
    supportsJsonMode: true,
    supportsTools: true,
    maxCandidates: 8,
    supportsThinking: true,
    defaultThoughtsTokens: 0,
    displayName: 'Gemini 2.5 Flash',
    version: '001',
  },
  'gemini-2.5-flash-lite': {
    rpm: 10,
    tpm: 250_000,
    rpd: 20,
    inputTokenLimit: 1_048_576,
    outputTokenLimit: 65_536,
    supportsSystemInstruction: true,
    supportsJsonMode: true,
    supportsTools: true,
    maxCandidates: 8,
    supportsThinking: true,
    defaultThoughtsTokens: 0,
    displayName: 'Gemini 2.5 Flash-Lite',
    version: '001',
  },
  // The models of December 2026. Free-tier figures as listed on 2026-07-18 (cheahjs/free-llm-api-resources,
  // from Google's Cloud Quotas API); Gemma 4 has no published row: Gemma 3's figures are assumed.
  // Gemma 4 takes a system instruction, JSON mode and tools (Gemma 3 took none of them).
  'gemma-4-31b-it': {
    rpm: 30,
    tpm: 15_000,
    rpd: 14_400,
    inputTokenLimit: 262_144,
    outputTokenLimit: 32_768,
    supportsSystemInstruction: true,
    supportsJsonMode: true,
    supportsTools: true,
    maxCandidates: 1,
    supportsThinking: false,
    defaultThoughtsTokens: 0,
    displayName: 'Gemma 4 31B',
    version: '001',
  },
  'gemma-4-26b-a4b-it': {
    rpm: 30,
    tpm: 15_000,
    rpd: 14_400,
    inputTokenLimit: 262_144,
    outputTokenLimit: 32_768,
    supportsSystemInstruction: true,
    supportsJsonMode: true,
    supportsTools: true,
    maxCandidates: 1,
    supportsThinking: false,
    defaultThoughtsTokens: 0,
    displayName: 'Gemma 4 26B A4B',
    version: '001',
  },
  'gemini-3.5-flash': {
    rpm: 5,
    tpm: 250_000,
    rpd: 20,
    inputTokenLimit: 1_048_576,
    outputTokenLimit: 65_536,
    supportsSystemInstruction: true,
    supportsJsonMode: true,
    supportsTools: true,
    maxCandidates: 8,
    supportsThinking: true,
    defaultThoughtsTokens: 0,
    displayName: 'Gemini 3.5 Flash',
    version: '001',
  },
  'gemini-3.5-flash-lite': {
    rpm: 15,
    tpm: 250_000,
    rpd: 500,
    inputTokenLimit: 1_048_576,
    outputTokenLimit: 65_536,
    supportsSystemInstruction: true,
    supportsJsonMode: true,
    supportsTools: true,
    maxCandidates: 8,
    supportsThinking: true,
    defaultThoughtsTokens: 0,
    displayName: 'Gemini 3.5 Flash-Lite',
    version: '001',
  },
  'gemini-3.1-flash-lite': {
    rpm: 15,
    tpm: 250_000,
    rpd: 500,
    inputTokenLimit: 1_048_576,
    outputTokenLimit: 65_536,
    supportsSystemInstruction: true,
    supportsJsonMode: true,
    supportsTools: true,
    maxCandidates: 8,
    supportsThinking: true,
    defaultThoughtsTokens: 0,
    displayName: 'Gemini 3.1 Flash-Lite',
    version: '001',
  },
  'gemini-3.6-flash': {
    rpm: 5,
    tpm: 250_000,
    rpd: 20,
    inputTokenLimit: 1_048_576,
    outputTokenLimit: 65_536,
    supportsSystemInstruction: true,
    supportsJsonMode: true,
    supportsTools: true,
    maxCandidates: 8,
    supportsThinking: true,
    defaultThoughtsTokens: 0,
    displayName: 'Gemini 3.6 Flash',
    version: '001',
  },
  'gemini-3.7-flash': {
    rpm: 5,
    tpm: 250_000,
    rpd: 20,
    inputTokenLimit: 1_048_576,
    outputTokenLimit: 65_536,
    supportsSystemInstruction: true,
    supportsJsonMode: true,
    supportsTools: true,
    maxCandidates: 8,
    supportsThinking: true,
    defaultThoughtsTokens: 0,
    displayName: 'Gemini 3.7 Flash',
    version: '001',
  },
  'gemini-3.8-flash': {
    rpm: 5,
    tpm: 250_000,
    rpd: 20,
    inputTokenLimit: 1_048_576,
    outputTokenLimit: 65_536,
    supportsSystemInstruction: true,
    supportsJsonMode: true,
    supportsTools: true,
    maxCandidates: 8,
    supportsThinking: true,
    defaultThoughtsTokens: 0,
    displayName: 'Gemini 3.8 Flash',
    version: '001',
  },
};

/** What a model id absent from DEFAULT_MODELS gets for the fields the caller left out. */
const GENERIC_MODEL: Omit<ModelSpec, 'displayName'> = {
  rpm: 15,
  tpm: 1_000_000,
  rpd: 1_500,
  inputTokenLimit: 1_048_576,
  outputTokenLimit: 65_536,
  supportsSystemInstruction: true,
  supportsJsonMode: true,
  supportsTools: true,
  maxCandidates: 8,
  supportsThinking: true,
  defaultThoughtsTokens: 0,
  version: '001',
};

/**
 * Local dev keys. Two keys share project A on purpose: Google applies limits per project, so
 * adding a key of the same project must not add capacity, and tests need a pair to show it.
 */
export const DEV_KEYS: Readonly<Record<string, string>> = {
  'sim-key-a1': 'sim-project-a',
  'sim-key-a2': 'sim-project-a',
  'sim-key-b1': 'sim-project-b',
  'sim-key-c1': 'sim-project-c',
};

/** Merges caller overrides over the defaults; the result always contains the default models. */
export function resolveModels(overrides: ModelOptions = {}): Map<string, ModelSpec> {
  if (overrides === null || typeof overrides !== 'object' || Array.isArray(overrides)) {
    throw new Error('google-sim: models must be an object of model id -> limits');
  }
  const ids = new Set([...Object.keys(DEFAULT_MODELS), ...Object.keys(overrides)]);
  const out = new Map<string, ModelSpec>();
  for (const id of ids) {
    const base = DEFAULT_MODELS[id] ?? { ...GENERIC_MODEL, displayName: id };
    const spec = { ...base, ...overrides[id] };
    for (const field of ['rpm', 'tpm', 'rpd', 'inputTokenLimit', 'outputTokenLimit', 'defaultThoughtsTokens'] as const) {
      if (!Number.isFinite(spec[field]) || spec[field] < 0) {
        throw new Error(`google-sim: models.${id}.${field} must be a non-negative number`);
      }
    }
    if (!(Number.isInteger(spec.maxCandidates) && spec.maxCandidates >= 1)) {
      throw new Error(`google-sim: models.${id}.maxCandidates must be a positive integer`);
    }
    checkSignatureMode(id, spec);
    out.set(id, spec);
  }
  return out;
}

/** The v1beta Model resource, as models.list / models.get return it. */
export function modelResource(id: string, spec: ModelSpec): Record<string, unknown> {
  return {
    name: `models/${id}`,
    version: spec.version,
    displayName: spec.displayName,
    description: `Simulated ${spec.displayName} (google-sim)`,
    inputTokenLimit: spec.inputTokenLimit,
    outputTokenLimit: spec.outputTokenLimit,
    supportedGenerationMethods: spec.embeddingDimensions === undefined ? ['generateContent', 'countTokens'] : ['embedContent', 'batchEmbedContents', 'countTokens'],
  };
}
