// The booking hands the request's model row, class row, caller and the request itself down whole
// (google_ai_admit_at to google_ai_booking_rules and google_ai_booking_outcome): a rule that reads a new column of the model
// needs that column and the rule's own lines, and no function between changes its signature. A limit
// waited for in the queue whose capacity the queue does not count gets its turn head first.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";

let db: TestDatabase;

beforeAll(async () => {
  db = await freshDatabase("rule_inputs");
}, 60_000);

afterAll(async () => {
  await db?.drop();
});

const CHAIN = ["google_ai_admit_at", "google_ai_queue_place", "google_ai_book_best_group", "google_ai_book_group",
  "google_ai_booking_rules", "google_ai_booking_outcome", "google_ai_refusal_times"];

const signatures = async () =>
  (await db.sql<{ s: string }[]>`select p.oid::regprocedure::text as s from pg_proc p
    where p.pronamespace = 'public'::regnamespace and p.proname = any(${CHAIN}) order by 1`).map((r) => r.s);

describe("a rule reads a new column of the model", () => {
  it("where it decides, with no signature changed on the way", async () => {
    const before = await signatures();
    expect(before).toHaveLength(CHAIN.length);
    // Every step from the queue to the verdict takes the model's row whole.
    for (const s of before.filter((s) => !s.startsWith("google_ai_admit_at("))) expect(s).toContain("google_ai_model_limits");

    // A maintainer's change: one column, and the rule's lines in google_ai_booking_outcome.
    await db.sql`alter table public.google_ai_model_limits add column closed_for_batch boolean default false not null`;
    const [{ definition }] = await db.sql<{ definition: string }[]>`
      select pg_get_functiondef('public.google_ai_booking_outcome'::regproc) as definition`;
    const rule = "begin\n";
    expect(definition).toContain(`${rule}  if v_day_full then\n`);
    await db.sql.unsafe(definition.replace(rule, `${rule}  if p_model.closed_for_batch and p_class.name = 'batch' then
    return row('rpm', 'window_full', true)::public.google_ai_limit_verdict;
  end if;\n`));
    expect(await signatures()).toEqual(before);

    await db.sql`insert into public.google_ai_model_limits (model, rpm, tpm, rpd, closed_for_batch)
                 values ('rule-open', 100, null, null, false), ('rule-closed', 100, null, null, true)`;
    const reserve = async (model: string, priority: string) => (await db.sql<{ r: { ok: boolean; limit?: string; cause?: string } }[]>`
      select public.google_ai_reserve_models(p_models => array[${model}::text], p_estimated_tokens => 10,
        p_caller => 'rule-test', p_priority => ${priority}) as r`)[0]!.r;
    expect(await reserve("rule-open", "batch")).toMatchObject({ ok: true });
    expect(await reserve("rule-closed", "batch")).toMatchObject({ ok: false, limit: "rpm", cause: "window_full" });
    expect(await reserve("rule-closed", "interactive")).toMatchObject({ ok: true });
  });
});

describe("a waitable limit the queue does not count", () => {
  it("holds the requests behind its due ticket until that ticket's own turn is served", async () => {
    // The queue's turns of a limit of its own (google_ai_queue_turns: 'head'), as a new waitable limit
    // gets them; 'pace' stands for it here.
    const [{ definition }] = await db.sql<{ definition: string }[]>`
      select pg_get_functiondef('public.google_ai_queue_turns'::regproc) as definition`;
    const counted = "any ('{rpm,tpm,rpd,cooldown,pace}'::text[]) then 'slots'";
    const head = "any ('{}'::text[]) then 'head'";
    expect(definition).toContain(counted);
    expect(definition).toContain(head);
    await db.sql.unsafe(definition.replace(counted, counted.replace(",pace}", "}")).replace(head, head.replace("{}", "{pace}")));
    expect((await db.sql`select public.google_ai_queue_turns('pace') as t`)[0]!.t).toBe("head");

    await db.sql`insert into public.google_ai_model_limits (model, rpm, tpm, rpd) values ('head-first', 100, null, null)`;
    const [{ rank }] = await db.sql`select rank from public.google_ai_priority_classes where name = 'batch'`;
    const [{ ticket }] = await db.sql`insert into public.google_ai_queue (model, priority_class, class_rank, caller, turn,
        enqueued_at, tokens, limit_hit, expected_at, lease_until, position)
      values ('head-first', 'batch', ${rank}, 'waiter', 1, now() - interval '5 seconds', 10, 'pace',
        now() - interval '1 second', now() + interval '1 minute', 1) returning ticket_id as ticket`;
    const reserve = async (caller: string, queueTicket: string | null) =>
      (await db.sql<{ r: { ok: boolean; limit?: string; cause?: string } }[]>`
        select public.google_ai_reserve_models(p_models => array['head-first'], p_estimated_tokens => 10,
          p_caller => ${caller}, p_priority => 'batch', p_queue_ticket => ${queueTicket}::uuid) as r`)[0]!.r;
    // The window has room, but the due ticket ahead waits for a limit the window does not count.
    expect(await reserve("newcomer", null)).toMatchObject({ ok: false, limit: "pace", cause: "queue_turn" });
    expect(await reserve("waiter", ticket)).toMatchObject({ ok: true });
    expect(await reserve("newcomer", null)).toMatchObject({ ok: true });
  });
});

describe("the booking takes the request whole", () => {
  it("no step below admit takes more than 8 parameters, nor a field of the request loose", async () => {
    // (google_ai_count_budgets counts amounts, a booking's or a settlement's difference: not the request's.)
    const steps = ["google_ai_book_best_group", "google_ai_caller_budget_at", "google_ai_book_group",
      "google_ai_booking_rules", "google_ai_paced_until", "google_ai_schedule_place", "google_ai_booking_outcome"];
    const rows = await db.sql<{ name: string; args: string[] }[]>`
      select p.proname as name, (p.proargnames)[1:p.pronargs] as args from pg_proc p
      where p.pronamespace = 'public'::regnamespace and p.proname = any(${[...steps, "google_ai_count_budgets"]})
      order by 1`;
    expect(rows.map((r) => r.name).sort()).toEqual([...steps, "google_ai_count_budgets"].sort());
    for (const r of rows) expect(r.args.length, r.name).toBeLessThanOrEqual(8);
    const loose = ["p_tokens", "p_output", "p_requests", "p_attempt", "p_exclude_key_ids"];
    for (const r of rows.filter((r) => steps.includes(r.name))) {
      expect(r.args.filter((a) => loose.includes(a)), r.name).toEqual([]);
      expect(r.args, r.name).toContain("p_request");
    }
  });
});
