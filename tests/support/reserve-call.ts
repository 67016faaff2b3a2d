// The reservation as llm-invoke makes it (store/pg-store.ts): one `call public.google_ai_reserve_call(...)`
// sent alone, its arguments by name, answering o_reservation, o_quota and o_cause. `procedure` names a
// stand-in of the same arguments (the durability tests' control without its flushing step).
import type { Sql } from "../../shared/db/migrate.ts";
import type { ReserveAnswer } from "./reserve-answer.ts";

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
      p_wait_left_ms => ${a.waitLeftMs ?? 0}::integer)`;
  if (!row) throw new Error(`${procedure} answered no row`);
  return row;
}
