// 429s that RPM/TPM/RPD do not explain, so the simulator can disagree with the gateway's picture of a
// project's quota (README "Quota causes"):
// - `limit: 0` per (project, model): the project has no quota for the model at all. Every
//   generateContent/stream call answers Google's free-tier 429 ("… limit: 0, model: …", QuotaFailure
//   with quotaId GenerateRequestsPerMinutePerProjectPerModel-FreeTier, RetryInfo "38s"): the 38 s are
//   Google's advice, waiting them never helps.
// - a spend cap per project: from the moment it is set, for its rolling window (10 minutes by
//   default), every call of the project, whatever the model, answers 429. No verbatim spend-cap body
//   is public; the simulator's shape (`documented`, the default) is its own choice, said in the README.
//   `bare` answers the body of googleapis/python-genai#2065 ("Resource has been exhausted (e.g. check
//   quota).", no details), which no client can tell from any other 429.
// - money per project (`moneyOut`): its monthly spending cap, its billing account's cap or its prepaid
//   credits are used up. Every call of the project answers 429 RESOURCE_EXHAUSTED without details,
//   worded as drawn for the run (errors.ts, MONEY_WORDINGS), until the rule is removed (the owner acted).
// It also counts every generateContent/stream call per (project, model), refused or not.
import * as errors from './errors.ts';
import { QUOTA_IDS, violation } from './quota.ts';

export interface LimitZeroSpec {
  project: string;
  model: string;
}

export interface SpendCapSpec {
  project: string;
  /** The rolling window, ms; the cap holds from when it is set until the window ends. Default 600000. */
  windowMs?: number;
  /** `documented` (default): the simulator's chosen spend-cap body; `bare`: Google's detail-less 429. */
  shape?: 'documented' | 'bare';
}

export interface MoneyOutSpec {
  project: string;
  kind: errors.MoneyKind;
}

export interface QuotaCauseOptions {
  limitZero?: LimitZeroSpec[];
  spendCaps?: SpendCapSpec[];
  moneyOut?: MoneyOutSpec[];
}

export interface QuotaCauseState {
  limitZero: LimitZeroSpec[];
  spendCaps: Array<Required<SpendCapSpec> & { until: string }>;
  moneyOut: MoneyOutSpec[];
  /** generateContent/stream calls per project, per model (refused ones included). */
  calls: Record<string, Record<string, number>>;
}

const DEFAULT_SPEND_WINDOW_MS = 10 * 60_000;
/** The delay Google's limit: 0 answers advise (issue 22 quotes 38 s; the message carries a fraction). */
const LIMIT_ZERO_DELAY = '38.2s';

export class QuotaCauses {
  private limitZero = new Set<string>();
  private spendCaps = new Map<string, { until: number; windowMs: number; shape: 'documented' | 'bare' }>();
  private calls = new Map<string, Map<string, number>>();
  private moneyOut = new Map<string, errors.MoneyKind>();

  constructor(private readonly now: () => number, options: QuotaCauseOptions = {}) {
    this.set(options);
  }

  /** Replaces the rules (limit: 0 pairs and spend caps); a spend cap starts now. Counts are kept. */
  set(options: QuotaCauseOptions): void {
    const limitZero = (options.limitZero ?? []).map(parseLimitZero);
    const caps = (options.spendCaps ?? []).map(parseSpendCap);
    this.limitZero = new Set(limitZero.map((l) => key(l.project, l.model)));
    this.spendCaps = new Map(
      caps.map((c) => [c.project, { until: this.now() + c.windowMs, windowMs: c.windowMs, shape: c.shape }]),
    );
    this.moneyOut = new Map((options.moneyOut ?? []).map(parseMoneyOut).map((m) => [m.project, m.kind]));
  }

  /** Clears rules and counts (the simulator's reset). */
  reset(): void {
    this.limitZero.clear();
    this.spendCaps.clear();
    this.moneyOut.clear();
    this.calls.clear();
  }

  /** Counts one call and answers the 429 a rule asks for, or null for the normal path. */
  refuse(project: string, model: string): errors.SimAnswer | null {
    const byModel = this.calls.get(project) ?? new Map<string, number>();
    this.calls.set(project, byModel);
    byModel.set(model, (byModel.get(model) ?? 0) + 1);

    const money = this.moneyOut.get(project);
    if (money !== undefined) return errors.moneyExhausted(money);
    const cap = this.spendCaps.get(project);
    const t = this.now();
    if (cap !== undefined && t < cap.until) {
      return cap.shape === 'bare' ? errors.bareResourceExhausted() : errors.spendCapExceeded(cap.windowMs, cap.until - t);
    }
    if (this.limitZero.has(key(project, model))) {
      return errors.quotaExceeded([violation(QUOTA_IDS.rpm, model, 0)], LIMIT_ZERO_DELAY, true);
    }
    return null;
  }

  state(): QuotaCauseState {
    const t = this.now();
    return {
      limitZero: [...this.limitZero].map((k) => {
        const [project, model] = k.split('\u0000');
        return { project: project!, model: model! };
      }),
      spendCaps: [...this.spendCaps].filter(([, c]) => c.until > t).map(([project, c]) => ({
        project,
        windowMs: c.windowMs,
        shape: c.shape,
        until: new Date(c.until).toISOString(),
      })),
      moneyOut: [...this.moneyOut].map(([project, kind]) => ({ project, kind })),
      calls: Object.fromEntries([...this.calls].map(([p, m]) => [p, Object.fromEntries(m)])),
    };
  }
}

function key(project: string, model: string): string {
  return `${project}\u0000${model}`;
}

function parseLimitZero(value: unknown): LimitZeroSpec {
  const o = value as Partial<LimitZeroSpec> | null;
  if (o === null || typeof o !== 'object' || typeof o.project !== 'string' || typeof o.model !== 'string') {
    throw new Error('google-sim: limitZero entries are {project, model}');
  }
  return { project: o.project, model: o.model };
}

function parseSpendCap(value: unknown): Required<SpendCapSpec> {
  const o = value as Partial<SpendCapSpec> | null;
  if (o === null || typeof o !== 'object' || typeof o.project !== 'string') {
    throw new Error('google-sim: spendCaps entries are {project, windowMs?, shape?}');
  }
  const windowMs = o.windowMs ?? DEFAULT_SPEND_WINDOW_MS;
  if (!(Number.isFinite(windowMs) && windowMs > 0)) throw new Error('google-sim: spendCaps windowMs must be positive');
  const shape = o.shape ?? 'documented';
  if (shape !== 'documented' && shape !== 'bare') throw new Error('google-sim: spendCaps shape is documented or bare');
  return { project: o.project, windowMs, shape };
}

function parseMoneyOut(value: unknown): MoneyOutSpec {
  const o = value as Partial<MoneyOutSpec> | null;
  const kinds = Object.keys(errors.MONEY_WORDINGS);
  if (o === null || typeof o !== 'object' || typeof o.project !== 'string' || !kinds.includes(String(o.kind))) {
    throw new Error(`google-sim: moneyOut entries are {project, kind: ${kinds.join(' | ')}}`);
  }
  return { project: o.project, kind: o.kind as errors.MoneyKind };
}

/** The control API's body: {limitZero?, spendCaps?, moneyOut?}. */
export function parseQuotaCauseOptions(body: unknown): QuotaCauseOptions {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new Error('expected {limitZero?: [{project, model}], spendCaps?: [{project, windowMs?, shape?}], ' +
      'moneyOut?: [{project, kind}]}');
  }
  const o = body as Record<string, unknown>;
  for (const field of ['limitZero', 'spendCaps', 'moneyOut'] as const) {
    if (o[field] !== undefined && !Array.isArray(o[field])) throw new Error(`${field} must be an array`);
  }
  return {
    limitZero: o.limitZero as LimitZeroSpec[] | undefined,
    spendCaps: o.spendCaps as SpendCapSpec[] | undefined,
    moneyOut: o.moneyOut as MoneyOutSpec[] | undefined,
  };
}
