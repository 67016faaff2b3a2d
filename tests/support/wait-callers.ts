// WAIT callers driven the way llm-invoke drives them (attempt/admission.ts, wait-policy.ts), on a real
// PostgreSQL with the clock injected: each request calls google_ai_reserve_models_at, tells it the wait
// it has left (less the round-trip allowance), and on a refusal that carries a ticket sleeps the time it
// was told (plus its wake-up delay) and calls again with the ticket; a refusal without a ticket, or one
// whose time lies beyond its wait, is its final answer (a 429). Calls due at the same moment go in the
// order they were scheduled. Deterministic: the database's decisions alone decide the outcome.
import type { Sql } from "../../shared/db/migrate.ts";
import { iso } from "./microseconds.ts";
import { reservation } from "./reserve-answer.ts";

/** llm-invoke keeps this much of the wait back when it tells the database (wait-policy.ts). */
const ROUND_TRIP_ALLOWANCE_MS = 100;

export interface WaitRequest {
  caller: string;
  /** A scoped token's hash: the request is its client's (the caller names it in the results). */
  tokenHash?: string;
  priority?: string;
  sentAt: number;
  maxWaitMs: number;
}

export interface WaitOutcome extends WaitRequest {
  /** Its index in the requests given. */
  index: number;
  admittedAt?: number;
  /** When it was answered a refusal (429). */
  refusedAt?: number;
  /** When its first ticket was taken (it queued). */
  queuedAt?: number;
  calls: number;
}

interface Answer {
  ok: boolean;
  limit?: string;
  retry_after_ms?: number | null;
  queue?: { ticket: string; expected_at: string };
}

export async function driveWaitCallers(sql: Sql, model: string, requests: WaitRequest[],
  options: { wakeDelayMs?: number } = {}): Promise<WaitOutcome[]> {
  const wakeDelayMs = options.wakeDelayMs ?? 0;
  const outcomes: WaitOutcome[] = requests.map((r, index) => ({ ...r, index, calls: 0 }));
  const pending = outcomes.map((o, seq) => ({ o, at: o.sentAt, seq, waitedMs: 0, ticket: null as string | null }));
  let seq = pending.length;
  while (pending.length > 0) {
    pending.sort((a, b) => a.at - b.at || a.seq - b.seq);
    const call = pending.shift()!;
    const o = call.o;
    o.calls++;
    const remainingMs = o.maxWaitMs - call.waitedMs;
    const [row] = await sql<{ r: Answer }[]>`select public.google_ai_reserve_models_at(${iso(call.at)}::text::timestamptz,
      jsonb_populate_record(null::public.google_ai_reservation, ${reservation({ models: [model], estimated_tokens: 10,
        caller: o.tokenHash ? null : o.caller, token_hash: o.tokenHash ?? null, priority: o.priority ?? null,
        queue_ticket: call.ticket ?? null,
        wait_left_ms: Math.max(0, Math.floor(remainingMs - ROUND_TRIP_ALLOWANCE_MS)) })}::text::jsonb)) as r`;
    const r = row!.r;
    if (r.ok) {
      o.admittedAt = call.at;
      continue;
    }
    const sleepMs = r.retry_after_ms;
    if (!r.queue || sleepMs === null || sleepMs === undefined || sleepMs > remainingMs) {
      o.refusedAt = call.at;
      continue;
    }
    o.queuedAt ??= call.at;
    pending.push({ o, at: call.at + sleepMs + wakeDelayMs, seq: seq++, waitedMs: call.waitedMs + sleepMs,
      ticket: r.queue.ticket });
  }
  return outcomes;
}

/** The most admissions of any `windowMs` span (each span ending at an admission). */
export function mostInWindow(times: number[], windowMs: number): number {
  return Math.max(0, ...times.map((end) => times.filter((t) => t > end - windowMs && t <= end).length));
}
