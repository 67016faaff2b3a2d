// Defaults for the Anthropic simulator: which models exist, the pool each draws its limits from, and
// the local dev organizations. Anthropic's limits belong to the organization's usage tier and change
// as it pays; the figures here are Tier 1's as Anthropic's rate-limits page listed them (docs/anthropic.md)
// and are options, not truths about Anthropic.

/** One pool's limits: three separate per-minute limits, each a bucket refilling continuously. */
export interface PoolLimits {
  /** Requests per minute. */
  rpm: number;
  /** Input tokens per minute: input_tokens + cache_creation_input_tokens (cache reads not counted). */
  itpm: number;
  /** Output tokens per minute: estimated from max_tokens on arrival, corrected when the answer ends. */
  otpm: number;
  /**
   * How much each bucket holds (a burst it can take at once); unpublished by Anthropic. Unset: the
   * minute's limit times the simulator's `capacityRatio`.
   */
  capacity?: Partial<BucketSizes> | undefined;
}

export interface BucketSizes {
  requests: number;
  inputTokens: number;
  outputTokens: number;
}

export interface ModelSpec {
  /** The family of models sharing one set of limits (Anthropic: e.g. every Sonnet 4.x). */
  pool: string;
  /** The pool's limits, unless the organization overrides them. */
  limits: PoolLimits;
  /** Input tokens a request may carry. */
  contextWindow: number;
  /** Highest max_tokens. */
  maxOutputTokens: number;
  /** Answers name this id in `model` (an alias answers with its dated snapshot). */
  snapshot: string;
  displayName: string;
  /** RFC 3339 release time of the model object. */
  createdAt: string;
  /** Anthropic retired it: 404 not_found_error on every call, absent from the list. */
  withdrawn?: boolean | undefined;
  /**
   * Its thinking is adaptive only: `thinking: {type: "enabled", budget_tokens}` is a 400 (messages.ts,
   * where Anthropic's public words for it are cited).
   */
  refusesThinkingBudget?: boolean | undefined;
  /** temperature, top_p or top_k other than the default is a 400 (messages.ts). */
  refusesSampling?: boolean | undefined;
}

export type ModelOptions = Record<string, Partial<ModelSpec>>;

const TIER1_OPUS_SONNET: PoolLimits = { rpm: 50, itpm: 30_000, otpm: 8_000 };
const TIER1_HAIKU_45: PoolLimits = { rpm: 50, itpm: 50_000, otpm: 10_000 };

const SONNET_45: ModelSpec = {
  pool: 'sonnet-4',
  limits: TIER1_OPUS_SONNET,
  contextWindow: 200_000,
  maxOutputTokens: 64_000,
  snapshot: 'claude-sonnet-4-5-20250929',
  displayName: 'Claude Sonnet 4.5',
  createdAt: '2025-09-29T00:00:00Z',
};
const HAIKU_45: ModelSpec = {
  ...SONNET_45,
  pool: 'haiku-4-5',
  limits: TIER1_HAIKU_45,
  snapshot: 'claude-haiku-4-5-20251001',
  displayName: 'Claude Haiku 4.5',
  createdAt: '2025-10-15T00:00:00Z',
};
const OPUS_45: ModelSpec = {
  ...SONNET_45,
  pool: 'opus-4',
  snapshot: 'claude-opus-4-5-20251101',
  displayName: 'Claude Opus 4.5',
  createdAt: '2025-11-24T00:00:00Z',
};

// The current models (no dated ids: an id answers as itself), each its own pool, with the figures the
// gateway's rows assume for them (supabase/migrations/20261122000200_rows_and_schedule.sql); they
// refuse a thinking budget and non-default sampling (the same file's refuses_* rows).
const SONNET_55: ModelSpec = {
  pool: 'sonnet-5-5',
  limits: TIER1_OPUS_SONNET,
  contextWindow: 1_000_000,
  maxOutputTokens: 128_000,
  snapshot: 'claude-sonnet-5-5',
  displayName: 'Claude Sonnet 5.5',
  createdAt: '2026-09-28T00:00:00Z',
  refusesThinkingBudget: true,
  refusesSampling: true,
};
const OPUS_55: ModelSpec = {
  ...SONNET_55,
  pool: 'opus-5-5',
  snapshot: 'claude-opus-5-5',
  displayName: 'Claude Opus 5.5',
  createdAt: '2026-09-22T00:00:00Z',
};
const HAIKU_55: ModelSpec = {
  ...SONNET_55,
  pool: 'haiku-5-5',
  limits: TIER1_HAIKU_45,
  snapshot: 'claude-haiku-5-5',
  displayName: 'Claude Haiku 5.5',
  createdAt: '2026-10-07T00:00:00Z',
};

export const DEFAULT_MODELS: Readonly<Record<string, ModelSpec>> = {
  'claude-opus-5-5': OPUS_55,
  'claude-sonnet-5-5': SONNET_55,
  'claude-haiku-5-5': HAIKU_55,
  'claude-sonnet-4-5': SONNET_45,
  'claude-sonnet-4-5-20250929': SONNET_45,
  'claude-haiku-4-5': HAIKU_45,
  'claude-haiku-4-5-20251001': HAIKU_45,
  'claude-opus-4-5': OPUS_45,
  'claude-opus-4-5-20251101': OPUS_45,
  // Retired by Anthropic (its model deprecations page): kept so that a test meets the 404 it answers.
  'claude-3-5-sonnet-20241022': { ...SONNET_45, pool: 'sonnet-3-5', snapshot: 'claude-3-5-sonnet-20241022', displayName: 'Claude Sonnet 3.5', createdAt: '2024-10-22T00:00:00Z', withdrawn: true },
  'claude-3-opus-20240229': { ...OPUS_45, pool: 'opus-3', snapshot: 'claude-3-opus-20240229', displayName: 'Claude Opus 3', createdAt: '2024-02-29T00:00:00Z', withdrawn: true },
};

function checkLimits(where: string, l: Partial<PoolLimits>): void {
  for (const f of ['rpm', 'itpm', 'otpm'] as const) {
    if (l[f] !== undefined && !(Number.isInteger(l[f]) && l[f]! >= 0)) throw new Error(`anthropic-sim: ${where}.${f} must be a non-negative integer`);
  }
  for (const [f, v] of Object.entries(l.capacity ?? {})) {
    if (!(Number.isInteger(v) && (v as number) >= 1)) throw new Error(`anthropic-sim: ${where}.capacity.${f} must be a positive integer`);
  }
}

/** Merges per-model overrides over the defaults; a new id adds a model (from Sonnet 4.5's figures, its own pool). */
export function resolveModels(overrides: ModelOptions = {}): Map<string, ModelSpec> {
  const out = new Map<string, ModelSpec>();
  for (const id of new Set([...Object.keys(DEFAULT_MODELS), ...Object.keys(overrides)])) {
    const base = DEFAULT_MODELS[id] ?? { ...SONNET_45, pool: id, snapshot: id, displayName: id };
    const o = overrides[id] ?? {};
    const spec: ModelSpec = { ...base, ...o, limits: { ...base.limits, ...o.limits } };
    checkLimits(`models.${id}.limits`, spec.limits);
    for (const f of ['contextWindow', 'maxOutputTokens'] as const) {
      if (!(Number.isInteger(spec[f]) && spec[f] >= 1)) throw new Error(`anthropic-sim: models.${id}.${f} must be a positive integer`);
    }
    out.set(id, spec);
  }
  return out;
}

/**
 * How an organization's money stands. Anthropic tells an empty balance or a reached limit in more
 * than one shape (docs/anthropic.md): `credit` a 400 invalid_request_error about the credit balance,
 * `billing` a 402 billing_error, `spend_limit` a 429 rate_limit_error whose details name
 * `enforced_spend_limit_reached` (no retry-after), `workspace_limit` a 400 invalid_request_error about
 * a spend limit the organization set.
 */
export type Wallet = 'funded' | 'credit' | 'billing' | 'spend_limit' | 'workspace_limit';
export const WALLETS: readonly Wallet[] = ['funded', 'credit', 'billing', 'spend_limit', 'workspace_limit'];

export interface OrgSpec {
  /** API keys of the organization; every key of one organization spends the same limits. */
  keys: string[];
  /** Per-pool overrides of the pool's limits for this organization. */
  limits?: Record<string, Partial<PoolLimits>> | undefined;
  wallet?: Wallet | undefined;
}

export type OrgOptions = Record<string, OrgSpec>;

/** Dev organizations (fake keys). Two keys share `org-sim-a`: a second key adds no capacity. */
export const DEV_ORGS: Readonly<OrgOptions> = {
  'org-sim-a': { keys: ['sk-ant-sim-a1', 'sk-ant-sim-a2'] },
  'org-sim-b': { keys: ['sk-ant-sim-b1'] },
};

export interface ResolvedOrgs {
  keyOrg: Map<string, string>;
  orgs: Map<string, OrgSpec>;
}

export function resolveOrgs(orgs: OrgOptions): ResolvedOrgs {
  const keyOrg = new Map<string, string>();
  const out = new Map<string, OrgSpec>();
  for (const [id, spec] of Object.entries(orgs)) {
    if (spec === null || typeof spec !== 'object' || !Array.isArray(spec.keys) || !spec.keys.every((k) => typeof k === 'string' && k !== '')) {
      throw new Error(`anthropic-sim: organization ${id} needs {keys: ["<api key>", ...]}`);
    }
    if (spec.wallet !== undefined && !WALLETS.includes(spec.wallet)) throw new Error(`anthropic-sim: organization ${id}: wallet must be one of ${WALLETS.join(', ')}`);
    for (const [pool, l] of Object.entries(spec.limits ?? {})) checkLimits(`${id}.limits.${pool}`, l);
    for (const key of spec.keys) {
      const other = keyOrg.get(key);
      if (other !== undefined) throw new Error(`anthropic-sim: key ${key} is in both ${other} and ${id}`);
      keyOrg.set(key, id);
    }
    out.set(id, structuredClone(spec));
  }
  return { keyOrg, orgs: out };
}

/** The limits an organization has for a model's pool, with each bucket's size. */
export function limitsFor(org: OrgSpec | undefined, spec: ModelSpec, capacityRatio: number): { limits: PoolLimits; sizes: BucketSizes } {
  const own = org?.limits?.[spec.pool] ?? {};
  const limits: PoolLimits = { rpm: own.rpm ?? spec.limits.rpm, itpm: own.itpm ?? spec.limits.itpm, otpm: own.otpm ?? spec.limits.otpm };
  const cap = { ...spec.limits.capacity, ...own.capacity };
  const size = (limit: number): number => Math.max(1, Math.ceil(limit * capacityRatio));
  return {
    limits,
    sizes: {
      requests: cap.requests ?? size(limits.rpm),
      inputTokens: cap.inputTokens ?? size(limits.itpm),
      outputTokens: cap.outputTokens ?? size(limits.otpm),
    },
  };
}

/** The model object of GET /v1/models. */
export function modelObject(id: string, spec: ModelSpec): Record<string, unknown> {
  return { type: 'model', id, display_name: spec.displayName, created_at: spec.createdAt };
}
