// A success's finalize as llm-invoke writes it (store/pg-store.ts): one `call public.google_ai_finalize_call(
// p_calls => …)` sent alone, p_calls the successes of one counter row (one, or a batch), each
// {reservation_id, outcome} (the outcome google_ai_attempt_outcome's attributes, its kind `succeeded`);
// it answers o_answers, one per call in order.
// `procedure` names a stand-in of the same arguments (the durability tests' control without its flushing step).
import type { Sql } from "../../shared/db/migrate.ts";

export interface FinalizeSuccess {
  reservation_id: string;
  kind: "succeeded";
  input_tokens: number;
  output_tokens: number;
  http_status: 200;
  latency_ms: number;
  /** The provider's room (a success written before its answer carries it). */
  room_requests?: number;
  room_tokens?: number;
  room_until?: string;
}

export async function finalizeCall(sql: Sql, calls: readonly FinalizeSuccess[], procedure = "google_ai_finalize_call"): Promise<{ ok: boolean }[]> {
  const [row] = await sql<{ o_answers: { ok: boolean }[] }[]>`
    call public.${sql(procedure)}(p_calls => ${JSON.stringify(calls.map(finalizeOf))}::text::jsonb)`;
  if (!Array.isArray(row?.o_answers)) throw new Error(`${procedure} answered no array`);
  return row.o_answers;
}

/** One call of p_calls: {reservation_id, outcome}. */
export function finalizeOf({ reservation_id, ...outcome }: FinalizeSuccess) {
  return { reservation_id, outcome };
}
