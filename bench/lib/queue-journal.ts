// The admission queue's history in a part's own database: a trigger the bench adds to
// google_ai_queue copies every ticket written (taken, renewed with a new time and place, or ended)
// to an unlogged table, so a run can say afterwards which requests held a ticket, at which turn and
// place, what time the gateway named them, and whether one was admitted past an earlier turn. One
// row insert per ticket write, in the reservation's own transaction (a ticket rolled back leaves no row).
import type { Sql } from "../../shared/db/migrate.ts";

/** One ticket write, as readQueueJournal returns it. */
export type TicketWrite = Awaited<ReturnType<typeof readQueueJournal>>[number];

export async function journalQueue(sql: Sql): Promise<void> {
  await sql`
    create unlogged table public.bench_queue_log (
      id bigint generated always as identity, at timestamptz not null default clock_timestamp(), op text not null,
      q public.google_ai_queue not null)`;
  await sql.unsafe(`
    create function public.bench_queue_log() returns trigger language plpgsql security definer set search_path to '' as $$
    begin
      insert into public.bench_queue_log (op, q)
      values (left(tg_op, 1), case when tg_op = 'DELETE' then old else new end);
      return null;
    end $$`);
  await sql`
    create trigger bench_queue_log after insert or update or delete on public.google_ai_queue
    for each row execute function public.bench_queue_log()`;
}

/** The model's ticket writes in the order they were made. */
export async function readQueueJournal(sql: Sql, model: string) {
  const rows = await sql<{ at: number; op: "I" | "U" | "D"; ticket: string; request_id: string | null; caller: string;
    rank: number; turn: string; enqueued_at: Date; expected_at: Date; lease_until: Date; position: number }[]>`
    select extract(epoch from l.at) * 1000 as at, l.op, (l.q).ticket_id as ticket, (l.q).request_id, (l.q).caller, (l.q).class_rank as rank,
           (l.q).turn::text as turn, (l.q).enqueued_at, (l.q).expected_at, (l.q).lease_until, (l.q).position
    from public.bench_queue_log l where (l.q).model = ${model} order by l.id`;
  return rows.map((r) => ({
    /** When it was written: the database's clock, epoch ms with microseconds (an admission's time is its
     * transaction's start; the ticket it ends is written later in that transaction). */
    at: Number(r.at),
    /** I: taken, U: renewed (asked again, told a new time), D: ended (admitted, refused, or lapsed). */
    op: r.op,
    ticket: r.ticket, requestId: r.request_id, caller: r.caller, rank: r.rank,
    turn: Number(r.turn), enqueuedAt: r.enqueued_at.getTime(), expectedAt: r.expected_at.getTime(),
    leaseUntil: r.lease_until.getTime(), position: r.position,
  }));
}

/** Each ticket's last write at `at` (inclusive), for the tickets live then (not ended, lease running). */
export function liveTickets(journal: readonly TicketWrite[], at: number): TicketWrite[] {
  const last = new Map<string, TicketWrite>();
  for (const w of journal) if (w.at <= at) last.set(w.ticket, w);
  return [...last.values()].filter((w) => w.op !== "D" && w.leaseUntil >= at);
}

/**
 * The turn order when request `requestId` of `caller` was admitted at `at`: the live tickets of its
 * class that stood before it (turn, then time taken), and how many of those were due (their time had
 * come, so the slot was theirs: google_ai_queue_place gives a free slot to due tickets ahead first).
 * A request admitted without a ticket stands where a ticket taken then would (google_ai_next_turn).
 */
export function turnOrderAt(journal: readonly TicketWrite[], requestId: string, caller: string, rank: number, at: number) {
  const live = liveTickets(journal, at).filter((w) => w.rank === rank);
  const own = live.find((w) => w.requestId === requestId);
  const others = live.filter((w) => w.requestId !== requestId);
  // (A new ticket takes the head's turn or the one after its caller's last; a held one moves up to one after either.)
  const mine = others.filter((w) => w.caller === caller && (own === undefined || w.turn < own.turn)).map((w) => w.turn);
  const head = others.length === 0 ? null : Math.min(...others.map((w) => w.turn));
  const turn = own === undefined ? Math.max(head ?? 1, 1 + Math.max(0, ...mine)) : Math.min(own.turn, 1 + Math.max(head ?? 0, ...mine));
  const since = own?.enqueuedAt ?? at;
  const ahead = others.filter((w) => w.turn < turn || (w.turn === turn && w.enqueuedAt < since));
  return { ahead: ahead.length, dueAhead: ahead.filter((w) => w.expectedAt <= at).length };
}
