// A request waiting for a model behind every other: a ticket of a class ranked after batch
// ('background', created if missing) whose lease and turn never come. The spread holds batch requests
// to its schedule only while someone waits (google_ai_spread_holds); this stands for the queue a flood
// leaves, without a flood. Returns its removal.
import type { Sql } from "../../shared/db/migrate.ts";

export async function someoneWaits(sql: Sql, model: string, enqueuedAt?: string): Promise<() => Promise<void>> {
  await sql`insert into public.google_ai_priority_classes (name, rank) values ('background', 20) on conflict do nothing`;
  const [{ ticket_id }] = await sql<{ ticket_id: string }[]>`
    insert into public.google_ai_queue (model, priority_class, class_rank, caller, turn, enqueued_at, tokens,
      limit_hit, expected_at, lease_until, position)
    values (${model}, 'background', 20, 'someone', 1, coalesce(${enqueuedAt ?? null}::text::timestamptz, now()), 10,
      'rpm', 'infinity', 'infinity', 1)
    returning ticket_id`;
  return async () => {
    await sql`delete from public.google_ai_queue where ticket_id = ${ticket_id}`;
  };
}
