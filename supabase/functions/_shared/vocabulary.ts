// The closed lists the gateway's parts speak — the database's answers and rows, the functions' types
// and request schemas, the metrics' label values and the docs — each written here once, a cause with
// the words a 429 gives it. Types and zod enums derive from these. Where another place must write a
// list out (a check constraint as one array constant, for speed; a SQL function's body; a doc table),
// tests/db/vocabulary.test.ts (the migrated database) and _shared/vocabulary.test.ts (the docs and the
// alert rules) hold it equal to the list here and name the file that disagrees. The clients, which
// ship alone, take limits, causes and classes as strings and write none of them out. A new refusal
// limit or cause, quota cause or status starts here; those tests then name every other place to change.

// ---- Providers' 429s ---------------------------------------------------------------------------------

/**
 * Why a provider refused for quota or money (Google's 429s: google/quota-cause.ts, docs/google-429s.md;
 * the other dialects' errors.ts read theirs into the same causes), each cause with what a 429's message
 * says of it after "Cause: " when no provider's own words are known: a money cause is said in the
 * provider's words (its folder's ProviderModule.moneyWords). The database's copy: google_ai_quota_causes(),
 * which the checks of google_ai_cooldowns.cause and google_ai_attempts.quota_cause ask.
 */
const QUOTA_CAUSE_WORDS = {
  minute: "the provider's per-minute quota.",
  day: "the provider's per-day quota, until the provider's midnight.",
  limit_zero: "the project has no quota for this model at its provider (limit: 0), until the next key check or " +
    "the provider's midnight.",
  spend_cap: "the spend-based rate limit of the project's tier, for its rolling window: every model of the " +
    "project rests.",
  monthly_cap: "a spending limit of the account at the provider is reached: it is out until its owner raises it or " +
    "the month turns.",
  billing_cap: "the billing account at the provider is over its spending cap: it is out until its owner raises it " +
    "or the month turns.",
  credits_depleted: "the account's prepaid credits at the provider are used up: it is out until its owner adds " +
    "credits.",
  unknown: "a provider's 429 that names no known quota.",
} as const;
export type QuotaCause = keyof typeof QUOTA_CAUSE_WORDS;
export const QUOTA_CAUSES = Object.keys(QUOTA_CAUSE_WORDS) as [QuotaCause, ...QuotaCause[]];

/** What a 429's message says of a cause in the gateway's own words (a provider's own: Upstream.causeWords). */
export function quotaCauseWords(cause: QuotaCause): string {
  return QUOTA_CAUSE_WORDS[cause];
}

/**
 * How long a project out of money rests: every model of it, then one call asks the provider again (one 429
 * an hour while the owner has not acted; served again within the hour after they do).
 */
export const MONEY_REST_MS = 60 * 60_000;

/**
 * The longest a spend cap rests a project, whatever its message or delay says. A spend cap stops every
 * model of the project, and its window is read from free text ("monthly", "per 720 hours" would rest
 * it for a month on one reading): after an hour one call per model asks the provider again, which costs at
 * most one 429 per model an hour while the cap holds.
 */
export const SPEND_CAP_MAX_REST_MS = 60 * 60_000;

/** Money, not quota: the project is out until its owner acts. */
export const MONEY_CAUSES = ["monthly_cap", "billing_cap", "credits_depleted"] as const satisfies readonly QuotaCause[];
export type MoneyCause = (typeof MONEY_CAUSES)[number];

/** The causes that rest every model of the quota group, not only the one asked (google_ai_quota_causes(true)). */
export const GROUP_CAUSES = ["spend_cap", ...MONEY_CAUSES] as const satisfies readonly QuotaCause[];

// ---- Refusals: the `limit` ---------------------------------------------------------------------------

/**
 * Refusals that waiting may lift: a minute window, the provider's day, a cooldown or a paced share
 * frees them. One entry each: the database's google_ai_queue_turns (40_queue.sql; held to this list by
 * tests/db/vocabulary.test.ts) gives these a queue ticket when the caller waits, and their turn: counted
 * in each group's window slots for the limits the queue counts, head first for any other (a due ticket
 * waiting for it holds the requests behind it); another model of a chain may escape them (MODEL_LIMITS).
 */
export const WAITABLE_LIMITS = ["rpm", "tpm", "rpd", "cooldown", "pace"] as const;

/**
 * What a queue ticket waits for (google_ai_queue.waits_for, set from its refusal's limit by
 * google_ai_waits_for): `window`, the model's capacity every caller shares (its groups' windows, days,
 * cooldowns, the spread's schedule); `class_allowance` and `caller_allowance`, a paced share of the
 * ticket's class or caller, which only requests of that class or caller wait for. The spread holds
 * requests back only while a ticket waits for the window, and a request's place counts only the tickets
 * that wait for what it would (google_ai_waits_alike).
 */
export const QUEUE_WAIT_TARGETS = ["window", "class_allowance", "caller_allowance"] as const;

/**
 * Refusals of the quota itself. `withdrawn`: the provider answered 404 for the model (its row is
 * marked); nothing brings it back but maintenance or the operator.
 */
export const QUOTA_LIMITS = [
  "rpm",
  "tpm",
  "rpd",
  "cooldown",
  "no_active_key",
  "too_large",
  "unknown_model",
  "withdrawn",
] as const;

/**
 * Refusals of the caller's own allowance: `pace`, the provider's day is paced for its class or caller
 * (google_ai_quota_shares.pace_burst); `caller_budget`, a service caller's daily budget
 * (google_ai_caller_budgets) is used up until Pacific midnight.
 */
export const ALLOWANCE_LIMITS = ["pace", "caller_budget"] as const;

/** A scoped token the database does not admit at all (also the rows of google_ai_credential_refusals). */
export const TOKEN_REFUSALS = ["token_invalid", "token_expired", "token_revoked"] as const;

/** Refusals of a scoped token (checked before the quota). */
export const TOKEN_LIMITS = [...TOKEN_REFUSALS, "model_not_allowed", "token_budget", "client_budget"] as const;
export type TokenLimit = (typeof TOKEN_LIMITS)[number];

/**
 * Idempotency (the caller's own request_id): `duplicate` carries the stored answer of a completed
 * request, `in_progress` says the same request is being served right now.
 */
export const REPLAY_LIMITS = ["duplicate", "in_progress"] as const;

/** Every `limit` a reservation may answer a refusal with (google_ai_reserve_models). */
export const REFUSAL_LIMITS = [...QUOTA_LIMITS, ...ALLOWANCE_LIMITS, ...TOKEN_LIMITS, ...REPLAY_LIMITS] as const;
export type RefusalLimit = (typeof REFUSAL_LIMITS)[number];

/**
 * Refusals that belong to one model, so the next model of a chain is asked (google_ai_fall_back_at's
 * c_model_limits).
 */
export const MODEL_LIMITS = [...WAITABLE_LIMITS, "no_active_key", "too_large", "unknown_model", "withdrawn"] as const;

/**
 * A fallback step's limit and an attempt row's limit_hit: a refusal's, or `retired` for a model of a
 * chain the operator retired (passed over; never a whole request's answer).
 */
export const STEP_LIMITS = [...REFUSAL_LIMITS, "retired"] as const;
export type StepLimit = (typeof STEP_LIMITS)[number];

/** The budgets: a token's, its client's, a service caller's (their cause is `budget`). */
export const BUDGET_LIMITS = ["token_budget", "client_budget", "caller_budget"] as const;

/**
 * The `limit` of llm-invoke's 429 answers: the waitable refusals, the budgets, and `upstream` (the
 * provider itself answered 429 on the last attempt, for no per-minute or per-day quota: its `cause` says which).
 */
export const INVOKE_RATE_LIMITS = [...WAITABLE_LIMITS, "upstream", ...BUDGET_LIMITS] as const;

/** The `limit` of any function's 429: llm-invoke's, and issue-kaggle-token's `mint_rate`. */
export const RATE_LIMITS = [...INVOKE_RATE_LIMITS, "mint_rate"] as const;
export type RateLimit = (typeof RATE_LIMITS)[number];

// ---- Refusals: the `cause` ---------------------------------------------------------------------------

/**
 * Why the database refused a request, one meaning each (docs/llm-invoke.md#errors), each cause once:
 * `limits`, the limits it is the cause of when nothing finer is known (google_ai_refusal_cause; the
 * booking names share_kept, spread and queue_turn itself, so they stand for no limit), and `words`,
 * what a 429's message says of it after "Cause: ". Any other cause is the request's own reason and is
 * its limit (OWN_REASON_LIMITS).
 */
const ADMISSION_CAUSE_TABLE = {
  window_full: {
    limits: ["rpm", "tpm"],
    words: "the sliding minute window (60 s plus a guard) is full; capacity comes back as its oldest " +
      "admissions leave it.",
  },
  share_kept: {
    limits: [],
    words: "what is left of the window or the day is kept by shares of other classes or callers.",
  },
  spread: {
    limits: [],
    words: "requests wait for this model, and batch requests are handed the window one per 61 s / RPM, or the " +
      "model's limits are buckets not yet refilled enough: this one's place in the schedule is later.",
  },
  day_exhausted: {
    limits: ["rpd"],
    words: "the model's requests for its provider's day are used up, until that day's midnight (plus a guard).",
  },
  pace: { limits: ["pace"], words: "a share paced over its provider's day allows its owner no more yet." },
  queue_turn: {
    limits: [],
    words: "the free slots are the turns of requests that waited longer or rank higher.",
  },
  upstream_cooldown: { limits: ["cooldown"], words: "the quota group rests after its provider's 429." },
  budget: {
    limits: ["token_budget", "client_budget", "caller_budget"],
    words: "the budget of requests or tokens that limit and period name is used up.",
  },
  shut_down: {
    limits: [],
    words: "the model's row names a shutdown date that has passed: its provider no longer serves it, and its " +
      "successor, where the row names one, serves in its place.",
  },
  over_rpm: {
    limits: [],
    words: "the request is more requests at its provider (an embedding batch whose provider counts each input) " +
      "than the model takes in a minute: it can never be booked whole; send fewer inputs.",
  },
  over_rpd: {
    limits: [],
    words: "the request is more requests at its provider (an embedding batch whose provider counts each input) " +
      "than any key has left of the model's day: send the whole batch after the day turns, or fewer inputs " +
      "where the day has some left.",
  },
  spend_budget: {
    limits: [],
    words: "the budget in money that limit and period name has no room for this call's worst case (its input at " +
      "the input price, the answer it is sent with and the model's thinking at the output price), or its price " +
      "is not known.",
  },
} as const satisfies Record<string, { limits: readonly StepLimit[]; words: string }>;

export type AdmissionCause = keyof typeof ADMISSION_CAUSE_TABLE;
export const ADMISSION_CAUSES = Object.keys(ADMISSION_CAUSE_TABLE) as [AdmissionCause, ...AdmissionCause[]];

/** What a 429's message says of an admission cause; null for the request's own reasons (their limit says it). */
export function admissionCauseWords(cause: string): string | null {
  return isOneOf(ADMISSION_CAUSES, cause) ? ADMISSION_CAUSE_TABLE[cause].words : null;
}

/** A refusal's cause when nothing finer is known (google_ai_refusal_cause): its limit's, or the limit itself. */
const CAUSE_OF_LIMIT: Partial<Record<StepLimit, AdmissionCause>> = Object.fromEntries(
  ADMISSION_CAUSES.flatMap((cause) => ADMISSION_CAUSE_TABLE[cause].limits.map((limit) => [limit, cause])),
);

export function refusalCauseOf(limit: StepLimit): string {
  return CAUSE_OF_LIMIT[limit] ?? limit;
}

/** The limits that are their own cause: the request's own reason, said already by its limit. */
export const OWN_REASON_LIMITS = STEP_LIMITS.filter((l) => CAUSE_OF_LIMIT[l] === undefined);

/** Every cause a refusal (and google_ai_attempts.refusal_cause) may name. */
export const REFUSAL_CAUSES: readonly string[] = [...ADMISSION_CAUSES, ...OWN_REASON_LIMITS];

// ---- The attempt log -----------------------------------------------------------------------------

/**
 * How a call to the model's provider ended: finalize's outcomes, the status of an attempt row that called
 * it (eve_gateway_upstream_calls_total's statuses).
 */
export const FINALIZE_OUTCOMES = ["succeeded", "upstream_error", "network_error", "timeout", "cut", "withdrawn"] as const;
export type FinalizeOutcome = (typeof FINALIZE_OUTCOMES)[number];

/**
 * An attempt row's status once decided (the label values of eve_gateway_attempts_total): refused, a
 * call's outcome, given back before the call (`released`), or `abandoned` (a lost finalize, a lapsed
 * queue place).
 */
export const DECIDED_STATUSES = ["refused", ...FINALIZE_OUTCOMES, "released", "abandoned"] as const;

/** google_ai_attempts.status: `reserved` while the provider is being called, then decided. */
export const ATTEMPT_STATUSES = ["reserved", ...DECIDED_STATUSES] as const;
export type AttemptStatus = (typeof ATTEMPT_STATUSES)[number];

// ---- Providers -----------------------------------------------------------------------------------

// The providers a key row or a model row may name are rows (google_ai_providers); the dialects that
// speak them are the registry's modules (providers/registry.ts), and that list derives from it.

// ---- Classes and tiers -------------------------------------------------------------------------------

/** Admission order between waiting requests, highest first (the rows of google_ai_priority_classes). */
export const PRIORITY_CLASSES = ["interactive", "batch"] as const;
export type PriorityClass = (typeof PRIORITY_CLASSES)[number];

/** The service tiers (Google's serviceTier, OpenAI's service_tier; google_ai_service_tiers.service_tier). */
export const SERVICE_TIERS = ["flex", "standard", "priority"] as const;
export type ServiceTier = (typeof SERVICE_TIERS)[number];

/** Whether `value` is one of `list` (narrowing an unknown string to the list's type). */
export function isOneOf<T extends string>(list: readonly T[], value: unknown): value is T {
  return typeof value === "string" && (list as readonly string[]).includes(value);
}
