// google_ai_call_cost of one call as finalize prices it: the call as its outcome record
// (google_ai_attempt_outcome's attributes by name, read as finalize reads them), its cost as text.
import type { Sql } from "../../shared/db/migrate.ts";

export async function callCost(sql: Sql, model: string, call: Record<string, unknown>): Promise<string | null> {
  const [row] = await sql<{ cost: string | null }[]>`select public.google_ai_call_cost(${model},
    jsonb_populate_record(null::public.google_ai_attempt_outcome, ${JSON.stringify(call)}::text::jsonb))::text as cost`;
  return row!.cost;
}
