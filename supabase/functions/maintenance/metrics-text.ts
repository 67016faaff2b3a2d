// Prometheus' text format (version 0.0.4) of one scrape's samples: every family's HELP and TYPE, even
// before it has a sample (a scraper knows each from the start), then its samples, families and samples
// sorted. The samples come from the database (public.google_ai_metrics(), one statement);
// what each family means lives here, beside the text that says it.

/** One sample as the database names it: its family, its own name (a histogram's `_bucket`, `_sum`, `_count`), its labels rendered. */
export interface MetricSample {
  family: string;
  sample: string;
  /** `name="value",…` with the values escaped, or "" for none. */
  labels: string;
  /** A decimal as PostgreSQL prints a numeric ("12.500", "Infinity"). */
  value: string;
}

type Kind = "counter" | "gauge" | "histogram";

/** Every family /metrics exports: its type and what it counts. */
export const METRIC_FAMILIES: Readonly<Record<string, { kind: Kind; help: string }>> = {
  eve_gateway_build_info: {
    kind: "gauge",
    help: "Always 1: the gateway's version (CHANGELOG.md) as the label version, from the function that answers the scrape.",
  },
  eve_gateway_attempts_total: {
    kind: "counter",
    help: "Attempt rows decided (one per reservation decision and its outcome), by status.",
  },
  eve_gateway_refusals_total: {
    kind: "counter",
    help: "Requests the gateway refused or made wait, by the limit and the cause that refused them last " +
      "(counted once final, minutes later).",
  },
  eve_gateway_upstream_calls_total: {
    kind: "counter",
    help: "Calls that reached the model's provider (google, openai), by outcome, the service tier asked for " +
      "(standard, flex, priority) and the one the provider says served.",
  },
  eve_gateway_upstream_429_total: {
    kind: "counter",
    help: "The provider's own 429 answers (google, openai), by cause: the quota or the money the answer named " +
      "(docs/google-429s.md).",
  },
  eve_gateway_finalizes_lost_total: {
    kind: "counter",
    help: "Reservations no outcome ever reached (abandoned by housekeeping).",
  },
  eve_gateway_queue_lapses_total: {
    kind: "counter",
    help: "Waiters that left the admission queue without being admitted (stopped asking).",
  },
  eve_gateway_tokens_total: {
    kind: "counter",
    help: "Tokens the provider counted (gen_ai.client.token.usage), by gen_ai_token_type.",
  },
  eve_gateway_spend_usd_total: {
    kind: "counter",
    help: "What the calls cost in US dollars (their tokens at their model's price), by model, provider and caller.",
  },
  eve_gateway_upstream_latency_seconds: {
    kind: "histogram",
    help: "The provider's own time per call (gen_ai.server.request.duration).",
  },
  eve_gateway_time_to_first_byte_seconds: {
    kind: "histogram",
    help: "From a request's arrival to its answer's first byte (gen_ai.server.time_to_first_token for streams).",
  },
  eve_gateway_added_latency_seconds: {
    kind: "histogram",
    help: "Time the gateway added to a request: Server-Timing's total less the provider and the wait.",
  },
  eve_gateway_wait_seconds: {
    kind: "histogram",
    help: "How long an admitted request waited for capacity, by priority class.",
  },
  eve_gateway_attempts_in_flight: { kind: "gauge", help: "Reservations open now (the provider called, no outcome yet)." },
  eve_gateway_quota_used: {
    kind: "gauge",
    help: "Admissions in the current window per quota group and model, with the model's provider: " +
      `window="minute" (the sliding 60 s + guard), "day" (the provider's day, in its row's day_zone).`,
  },
  eve_gateway_quota_limit: {
    kind: "gauge",
    help: "The limit of that window after the model's safety margin (absent: no limit).",
  },
  eve_gateway_provider_day_end_timestamp_seconds: {
    kind: "gauge",
    help: "When the provider's current day ends, in its row's day_zone: its models' requests per day " +
      `(eve_gateway_quota_used{window="day"}) reopen.`,
  },
  eve_gateway_pacific_day_end_timestamp_seconds: {
    kind: "gauge",
    help: "When the current Pacific day ends: the callers' daily budgets reset (a provider's daily quotas reset " +
      "at eve_gateway_provider_day_end_timestamp_seconds).",
  },
  eve_gateway_queue_depth: {
    kind: "gauge",
    help: "Requests waiting in the admission queue, by model and priority class.",
  },
  eve_gateway_queue_oldest_wait_seconds: {
    kind: "gauge",
    help: "How long the oldest request in the queue has waited.",
  },
  eve_gateway_cooldown_seconds_left: {
    kind: "gauge",
    help: "A quota group resting for a model, by provider and cause: seconds until it may book again.",
  },
  eve_gateway_model_withdrawn: {
    kind: "gauge",
    help: "1 when its provider answered 404 for the model and requests pass over it.",
  },
  eve_gateway_provider_limit: {
    kind: "gauge",
    help: "A limit as the provider last stated it for a quota group and model (rpm, tpm, rpd, itpm, otpm), and whether the row follows or keeps its own (mode).",
  },
  eve_gateway_provider_limit_disagreement: {
    kind: "gauge",
    help: "1 where a model row disagrees with its provider's stated limit: above (a row that keeps its own, above the provider's), below (under it), ceiling (a row that follows, held below it by its ceiling).",
  },
  eve_gateway_model_shutdown_timestamp_seconds: {
    kind: "gauge",
    help: "The start (UTC) of the day its provider stops serving the model, when its requests go to its successor.",
  },
  eve_gateway_keys: {
    kind: "gauge",
    help: "Keys by provider, quota group, last health check against the provider's model list (ok, invalid, missing_secret, error; unchecked before the first run) and rotation.",
  },
  eve_gateway_caller_budget_remaining: {
    kind: "gauge",
    help: "What a Kaggle client (or a named service caller) may still use today.",
  },
  eve_gateway_housekeeping_last_run_timestamp_seconds: {
    kind: "gauge",
    help: "When the last housekeeping run (not skipped) ended.",
  },
  eve_gateway_housekeeping_last_success_timestamp_seconds: {
    kind: "gauge",
    help: "When the last successful housekeeping run ended.",
  },
  eve_gateway_housekeeping_last_run_failed: { kind: "gauge", help: "1 when the last housekeeping run failed." },
  eve_gateway_cron_job_missing: {
    kind: "gauge",
    help: "1 when a pg_cron job the gateway expects is not scheduled (active, in this database), 0 when it is, by job.",
  },
  eve_gateway_metrics_live_rows: {
    kind: "gauge",
    help: "Attempt rows this scrape counted itself (above the fold's mark).",
  },
  eve_gateway_response_cache_hits: {
    kind: "gauge",
    help: "Answers served from the response cache, per scope, in the hit rows kept (docs/response-cache.md).",
  },
  eve_gateway_response_cache_saved_usd: {
    kind: "gauge",
    help: "What the calls those hits spared would have cost, in US dollars (the stored answers' cost_usd).",
  },
  eve_gateway_response_cache_misses_total: {
    kind: "counter",
    help: "Requests that asked the response cache, found no answer and called the provider for one, per scope.",
  },
  eve_gateway_response_cache_entries: { kind: "gauge", help: "Answers the response cache holds now, per scope." },
  eve_gateway_response_cache_bytes: {
    kind: "gauge",
    help: "Bytes of answers the response cache holds now, per scope (held under its size limit by housekeeping).",
  },
};

/** The text of one scrape. A family the list above does not name is still exported, as `untyped`. */
export function metricsText(samples: readonly MetricSample[]): string {
  const byFamily = new Map<string, MetricSample[]>(Object.keys(METRIC_FAMILIES).map((f) => [f, []]));
  for (const s of samples) {
    const members = byFamily.get(s.family);
    if (members === undefined) byFamily.set(s.family, [s]);
    else members.push(s);
  }
  let text = "";
  for (const family of [...byFamily.keys()].sort(codeUnitOrder)) {
    const known = METRIC_FAMILIES[family];
    if (known !== undefined) text += `# HELP ${family} ${known.help}\n`;
    text += `# TYPE ${family} ${known?.kind ?? "untyped"}\n`;
    for (const s of byFamily.get(family)!.sort(bySampleThenLabels)) {
      text += `${s.sample}${s.labels === "" ? "" : `{${s.labels}}`} ${sampleValue(s.value)}\n`;
    }
  }
  return text;
}

/** A numeric as the format writes it: `+Inf`, or the decimal without trailing zeros. */
function sampleValue(value: string): string {
  if (value === "Infinity") return "+Inf";
  return value.includes(".") ? value.replace(/\.?0+$/, "") : value;
}

function bySampleThenLabels(a: MetricSample, b: MetricSample): number {
  return codeUnitOrder(a.sample, b.sample) || codeUnitOrder(a.labels, b.labels);
}

// UTF-16 code-unit order: byte order unless a label value mixes characters above U+FFFF with ones in
// U+E000-U+FFFF (Prometheus reads samples in any order; the order only keeps the text stable).
function codeUnitOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
