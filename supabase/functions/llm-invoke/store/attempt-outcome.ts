// What came of one attempt, as finalize takes it: one record, the database's google_ai_attempt_outcome
// (15_request_log.sql), sent as JSON and read there as jsonb_populate_record reads it (a key the
// database does not know yet is ignored, one left out is null). attemptOutcome is the one mapper from
// the attempt's result: the lone call and the batch send it (store/pg-store.ts), and a finalize that
// never lands logs it (attempt/finalize.ts), so what is replayed is what would have been written.
// A new usage field: one attribute of the type and one line below.
import type { FinalizeParams } from "../contract.ts";
import { STATED_LIMIT_COLUMNS, type StatedLimits } from "../../_shared/upstream/port.ts";

export interface AttemptOutcome {
  /** succeeded, upstream_error, network_error, timeout, cut (cut_by says who) or withdrawn (successor). */
  kind: FinalizeParams["outcome"];
  input_tokens: number | null;
  output_tokens: number | null;
  cached_input_tokens: number | null;
  thinking_tokens: number | null;
  cache_write_5m_tokens: number | null;
  cache_write_1h_tokens: number | null;
  /** A call answered without usage: the tokens its window keeps of the booking. */
  settled_tokens: number | null;
  http_status: number | null;
  error_code: string | null;
  error_message: string | null;
  quota_id: string | null;
  quota_cause: string | null;
  latency_ms: number | null;
  added_ms: number | null;
  first_byte_ms: number | null;
  cooldown_until: string | null;
  /** A per-day quota: rest until the provider's next midnight (its row's day_zone). */
  cooldown_until_provider_midnight: boolean;
  key_rejected: boolean | null;
  service_tier: string | null;
  served_tier: string | null;
  room_requests: number | null;
  room_tokens: number | null;
  room_until: string | null;
  /** STATED_LIMIT_COLUMNS' order, null where not stated; null: none stated. */
  stated_limits: (number | null)[] | null;
  cut_by: "client" | "upstream" | null;
  successor: string | null;
  /** A success's answer kept for replay; absent (never JSON null) when there is none. */
  response?: unknown;
}

/** The attempt's result as google_ai_finalize's p_outcome (timestamps ISO text, durations whole ms). */
export function attemptOutcome(p: FinalizeParams): AttemptOutcome {
  return {
    kind: p.outcome,
    input_tokens: p.inputTokens,
    output_tokens: p.outputTokens,
    cached_input_tokens: p.cachedInputTokens ?? null,
    thinking_tokens: p.thinkingTokens ?? null,
    cache_write_5m_tokens: p.cacheWrite5mTokens ?? null,
    cache_write_1h_tokens: p.cacheWrite1hTokens ?? null,
    settled_tokens: p.settledTokens ?? null,
    http_status: p.httpStatus,
    error_code: p.errorCode,
    error_message: p.errorMessage,
    quota_id: p.quotaId,
    quota_cause: p.quotaCause ?? null,
    latency_ms: roundedMs(p.latencyMs),
    added_ms: roundedMs(p.addedMs),
    first_byte_ms: roundedMs(p.firstByteMs),
    cooldown_until: p.cooldownUntil === null ? null : p.cooldownUntil.toISOString(),
    cooldown_until_provider_midnight: p.cooldownUntilProviderMidnight,
    key_rejected: p.keyRejected ?? null,
    service_tier: p.serviceTier ?? null,
    served_tier: p.servedTier ?? null,
    room_requests: p.room?.requests ?? null,
    room_tokens: p.room?.tokens ?? null,
    room_until: p.room == null ? null : p.room.until.toISOString(),
    stated_limits: statedArray(p.statedLimits),
    cut_by: p.outcome === "cut" ? p.cutBy ?? "upstream" : null,
    successor: p.successor ?? null,
    ...(p.response == null ? {} : { response: p.response }),
  };
}

/** Stated limits in STATED_LIMIT_COLUMNS' order (null: not stated); none stated: null. */
function statedArray(limits: StatedLimits | null | undefined): (number | null)[] | null {
  if (limits == null) return null;
  const figures = STATED_LIMIT_COLUMNS.map((c) => limits[c] ?? null);
  return figures.every((f) => f === null) ? null : figures;
}

/** A duration for an integer attribute: whole ms, null when not known. */
function roundedMs(value: number | null | undefined): number | null {
  return typeof value === "number" && Number.isFinite(value) ? Math.max(0, Math.round(value)) : null;
}
