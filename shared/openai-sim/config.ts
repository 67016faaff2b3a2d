// Defaults for the OpenAI simulator: which models exist, their limits, and the local dev
// organizations. OpenAI's limits depend on the organization's usage tier and change as it pays
// more; the figures here are Tier 1's as OpenAI listed them in 2025-2026 (an assumption where no
// figure was published) and are options, not truths about OpenAI.

/** Limits of one organization for one model. */
export interface Limits {
  /** Requests per minute. */
  rpm: number;
  /** Tokens per minute, counted on arrival as input + max_tokens (× n). */
  tpm: number;
  /** Requests per day (UTC day); undefined = no daily cap. */
  rpd?: number | undefined;
}

export interface ModelSpec extends Limits {
  /** Input + output tokens a request may ask for. */
  contextWindow: number;
  /** Highest max_tokens / max_completion_tokens. */
  maxOutputTokens: number;
  /** Answers name this snapshot in `model` (OpenAI answers with the dated snapshot). */
  snapshot: string;
  /** `created` of the model object (epoch seconds). */
  created: number;
  ownedBy: string;
  /**
   * OpenAI no longer serves it: 404 `model_not_found` on completions and on GET /v1/models/{id},
   * absent from the list. Also settable at run time (sim-core/withdrawn.ts).
   */
  withdrawn?: boolean | undefined;
  /** The substitute OpenAI named when it announced the shutdown (some 404 wordings name it). */
  replacement?: string | undefined;
  /** usage.prompt_tokens_details.cached_tokens of every answer (at most its prompt); unset: 0. */
  cachedTokens?: number | undefined;
  /** usage.completion_tokens_details.reasoning_tokens of every answer, counted in completion_tokens; unset: 0. */
  reasoningTokens?: number | undefined;
  /** An embedding model: its vectors' size (it answers POST /v1/embeddings, not chat completions). */
  embeddingDimensions?: number | undefined;
}

export type ModelOptions = Record<string, Partial<ModelSpec>>;

const GPT_4O: ModelSpec = {
  rpm: 500,
  tpm: 30_000,
  contextWindow: 128_000,
  maxOutputTokens: 16_384,
  snapshot: 'gpt-4o-2024-08-06',
  created: 1_715_367_049,
  ownedBy: 'system',
};

export const DEFAULT_MODELS: Readonly<Record<string, ModelSpec>> = {
  'gpt-4o': GPT_4O,
  'gpt-4o-mini': { ...GPT_4O, tpm: 200_000, snapshot: 'gpt-4o-mini-2024-07-18', created: 1_721_172_741 },
  'gpt-4.1-mini': {
    ...GPT_4O,
    tpm: 200_000,
    contextWindow: 1_047_576,
    maxOutputTokens: 32_768,
    snapshot: 'gpt-4.1-mini-2025-04-14',
    created: 1_744_318_173,
  },
  'gpt-5.4-mini': {
    ...GPT_4O,
    tpm: 500_000,
    contextWindow: 400_000,
    maxOutputTokens: 128_000,
    snapshot: 'gpt-5.4-mini',
    created: 1_772_409_600,
  },
  'gpt-5.5': {
    ...GPT_4O,
    tpm: 500_000,
    contextWindow: 400_000,
    maxOutputTokens: 128_000,
    snapshot: 'gpt-5.5',
    created: 1_777_593_600,
  },
  // Shut down by OpenAI (its deprecations page): kept so that a test meets the 404 it answers.
  'gpt-4': { ...GPT_4O, tpm: 10_000, contextWindow: 8_192, maxOutputTokens: 8_192, snapshot: 'gpt-4-0613', created: 1_687_882_411, withdrawn: true, replacement: 'gpt-4.1-mini' },
  'gpt-3.5-turbo': { ...GPT_4O, tpm: 200_000, contextWindow: 16_385, maxOutputTokens: 4_096, snapshot: 'gpt-3.5-turbo-0125', created: 1_677_610_602, withdrawn: true, replacement: 'gpt-4.1-mini' },
  // Tier 1's embedding limits (3,000 RPM, 1,000,000 TPM) and sizes.
  'text-embedding-3-small': {
    ...GPT_4O, rpm: 3_000, tpm: 1_000_000, contextWindow: 8_192, maxOutputTokens: 0,
    snapshot: 'text-embedding-3-small', created: 1_705_948_997, embeddingDimensions: 1536,
  },
  'text-embedding-3-large': {
    ...GPT_4O, rpm: 3_000, tpm: 1_000_000, contextWindow: 8_192, maxOutputTokens: 0,
    snapshot: 'text-embedding-3-large', created: 1_705_953_180, embeddingDimensions: 3072,
  },
  'chatgpt-4o-latest': { ...GPT_4O, snapshot: 'chatgpt-4o-latest', created: 1_723_515_131, withdrawn: true, replacement: 'gpt-5.5' },
};

/** Merges per-model overrides over the defaults; a new id adds a model (from gpt-4o's figures). */
export function resolveModels(overrides: ModelOptions = {}): Map<string, ModelSpec> {
  const out = new Map<string, ModelSpec>();
  for (const id of new Set([...Object.keys(DEFAULT_MODELS), ...Object.keys(overrides)])) {
    const spec = { ...(DEFAULT_MODELS[id] ?? { ...GPT_4O, snapshot: id }), ...overrides[id] } as ModelSpec;
    for (const field of ['rpm', 'tpm', 'contextWindow', 'maxOutputTokens'] as const) {
      if (!(Number.isInteger(spec[field]) && spec[field] >= 0)) throw new Error(`openai-sim: models.${id}.${field} must be a non-negative integer`);
    }
    if (spec.rpd !== undefined && !(Number.isInteger(spec.rpd) && spec.rpd >= 0)) {
      throw new Error(`openai-sim: models.${id}.rpd must be a non-negative integer`);
    }
    out.set(id, spec);
  }
  return out;
}

/** An organization: the keys that belong to it, its limits, its wallet. */
export interface OrgSpec {
  /** API keys of the organization; every key of one organization spends the same limits. */
  keys: string[];
  /** Per-model overrides of the model's limits for this organization. */
  limits?: Record<string, Partial<Limits>> | undefined;
  /** 'empty': no credit left, every completion answers 429 `insufficient_quota`. Default 'funded'. */
  wallet?: Wallet | undefined;
}

export type Wallet = 'funded' | 'empty';
export type OrgOptions = Record<string, OrgSpec>;

/**
 * Dev organizations (fake keys). Two keys share `org-sim-a` on purpose: a second key of one
 * organization adds no capacity on OpenAI.
 */
export const DEV_ORGS: Readonly<OrgOptions> = {
  'org-sim-a': { keys: ['sk-sim-a1', 'sk-sim-a2'] },
  'org-sim-b': { keys: ['sk-sim-b1'] },
};

export interface ResolvedOrgs {
  /** api key → organization id */
  keyOrg: Map<string, string>;
  orgs: Map<string, OrgSpec>;
}

export function resolveOrgs(orgs: OrgOptions): ResolvedOrgs {
  const keyOrg = new Map<string, string>();
  const out = new Map<string, OrgSpec>();
  for (const [id, spec] of Object.entries(orgs)) {
    if (spec === null || typeof spec !== 'object' || !Array.isArray(spec.keys) || !spec.keys.every((k) => typeof k === 'string' && k !== '')) {
      throw new Error(`openai-sim: organization ${id} needs {keys: ["<api key>", ...]}`);
    }
    if (spec.wallet !== undefined && spec.wallet !== 'funded' && spec.wallet !== 'empty') {
      throw new Error(`openai-sim: organization ${id}: wallet must be "funded" or "empty"`);
    }
    for (const key of spec.keys) {
      const other = keyOrg.get(key);
      if (other !== undefined) throw new Error(`openai-sim: key ${key} is in both ${other} and ${id}`);
      keyOrg.set(key, id);
    }
    out.set(id, { ...spec, keys: [...spec.keys] });
  }
  return { keyOrg, orgs: out };
}

/** The limits an organization has for a model: the model's, with the organization's overrides. */
export function limitsFor(org: OrgSpec | undefined, model: string, spec: ModelSpec): Limits {
  const own = org?.limits?.[model] ?? {};
  return { rpm: own.rpm ?? spec.rpm, tpm: own.tpm ?? spec.tpm, rpd: 'rpd' in own ? own.rpd : spec.rpd };
}

/** The model object of GET /v1/models. */
export function modelObject(id: string, spec: ModelSpec): Record<string, unknown> {
  return { id, object: 'model', created: spec.created, owned_by: spec.ownedBy };
}
