// The reservation as llm-invoke makes it (store/pg-store.ts): one `call public.google_ai_reserve_call(...)`
// sent alone, its arguments by name, answering o_reservation, o_quota and o_cause. `procedure` names a
// stand-in of the same arguments (the durability tests' control without its flushing step).
import type { Sql } from "../../shared/db/migrate.ts";
import type { ReserveAnswer } from "./reserve-answer.ts";
import { type FinalizeSuccess, finalizeOf } from "./finalize-call.ts";

export interface ReserveCallArgs {
  models: string[];
  estimatedTokens: number;
  /** A service caller's label (p_caller); or tokenHash: a scoped token's client. */
  caller?: string | null;
  tokenHash?: string | null;
  requestId: string;
  priority?: string | null;
  /** WAIT: how long the caller would still wait (ms); 0 is NO_WAIT. */
  waitLeftMs?: number;
  queueTicket?: string | null;
  /** A request whose id is claimed (google_ai_idempotent_answer): false unless said. */
  idempotent?: boolean;
}

export interface ReserveCallAnswer {
  o_reservation: ReserveAnswer & { quota_group?: string; fallback_from?: unknown };
  o_quota: unknown;
  o_cause: string | null;
}

export async function reserveCall(sql: Sql, a: ReserveCallArgs, procedure = "google_ai_reserve_call"): Promise<ReserveCallAnswer> {
  const [row] = await sql<ReserveCallAnswer[]>`
    call public.${sql(procedure)}(
      p_models => ${a.models}::text[], p_estimated_tokens => ${a.estimatedTokens}::integer,
      p_caller => ${a.caller ?? null}, p_token_hash => ${a.tokenHash ?? null}, p_request_id => ${a.requestId},
      p_priority => ${a.priority ?? null}, p_queue_ticket => ${a.queueTicket ?? null}::uuid,
      p_wait_left_ms => ${a.waitLeftMs ?? 0}::integer, p_idempotent => ${a.idempotent ?? false}::boolean)`;
  if (!row) throw new Error(`${procedure} answered no row`);
  return row;
}

/** One reservation of a batch, as google_ai_reserve_calls answers it: as alone, or {alone: true} (made again by itself). */
export type ReserveCallsAnswer = ReserveCallAnswer | { alone: true };

/**
 * Reservations that met in one worker, as llm-invoke makes them (store/pg-store.ts): one `call
 * public.google_ai_reserve_calls(p_calls => …)` sent alone, each call a google_ai_reservation record;
 * the answers in the calls' order. `procedure` as for reserveCall.
 */
export async function reserveCalls(sql: Sql, calls: ReserveCallArgs[], procedure = "google_ai_reserve_calls"): Promise<ReserveCallsAnswer[]> {
  return (await reserveCallsRiding(sql, calls, null, procedure)).answers;
}

/**
 * The same with successes' finalizes riding (p_finalizes: each {reservation_id, outcome}, as llm-invoke's
 * store sends them: riders.ts); o_finalized their answers, {error: SQLSTATE} when they failed, or null (none rode).
 */
export async function reserveCallsRiding(sql: Sql, calls: ReserveCallArgs[], finalizes: readonly FinalizeSuccess[] | null,
  procedure = "google_ai_reserve_calls"): Promise<{ answers: ReserveCallsAnswer[]; finalized: { ok: boolean }[] | { error: string } | null }> {
  const records = calls.map((a) => ({
    models: a.models, estimated_tokens: a.estimatedTokens, caller: a.caller ?? null, token_hash: a.tokenHash ?? null,
    request_id: a.requestId, priority: a.priority ?? null, queue_ticket: a.queueTicket ?? null,
    wait_left_ms: a.waitLeftMs ?? 0, idempotent: a.idempotent ?? false,
  }));
  const riding = finalizes === null ? null : JSON.stringify(finalizes.map(finalizeOf));
  const [row] = await sql<{ o_answers: ReserveCallsAnswer[]; o_finalized?: { ok: boolean }[] | { error: string } | null }[]>`
    call public.${sql(procedure)}(p_calls => ${JSON.stringify(records)}::text::jsonb${
    riding === null ? sql`` : sql`, p_finalizes => ${riding}::text::jsonb`})`;
  if (!row || !Array.isArray(row.o_answers) || row.o_answers.length !== calls.length) {
    throw new Error(`${procedure} answered no answer per call`);
  }
  return { answers: row.o_answers, finalized: row.o_finalized ?? null };
}

/** A batch as the worker makes it: its calls answered {alone: true} made again, each by itself (reserveCall). */
export async function reserveBatch(sql: Sql, calls: ReserveCallArgs[]): Promise<ReserveCallAnswer[]> {
  const answers = await reserveCalls(sql, calls);
  return Promise.all(answers.map((a, i) => "alone" in a ? reserveCall(sql, calls[i]!) : a));
}
