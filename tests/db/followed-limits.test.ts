// A row that follows its provider is held to the limits the provider stated for a quota group everywhere the
// gateway counts against a limit, not only by the booking (docs/models.md, "Limits as the provider states
// them"), on a real PostgreSQL with the clock injected, each figure exact:
//   the queue's turns (google_ai_queue_turn_at): a row at 6 RPM whose provider raised it to 12, 12 admitted
//   one a second: three WAIT callers asking one after another get the turns of the first three admissions
//   to leave the window (at 6, of the seventh to ninth); a row at 12 lowered to 6, 6 admitted: the second waiter's
//   turn is the second admission's to leave (at 12, it would be told the first's); a row that keeps its own
//   at 6 while its provider says 12 still queues at 6;
//   a request too large (google_ai_admit_at, before any lock): larger than the row's TPM but within the
//   provider's raise, admitted; within the row's but above the provider's lowering, refused too_large with
//   the provider's figure (google_ai_followed_widest);
//   the usage view (google_ai_usage_now, google_ai_group_room): the followed limit and what is left of it;
//   Anthropic's input tokens (itpm) lowered by its statement to 1,000 under the row's 100,000: a request of
//   3,000 refused too_large naming 1,000.
// The provider's statements are set on the group's counter row as finalize leaves them
// (google_ai_note_stated; tests/db/stated-limits.test.ts drives that step itself).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { iso, msOf } from "../support/microseconds.ts";
import { reservation, type ReserveAnswer } from "../support/reserve-answer.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";

let db: TestDatabase;
const ORG = "org-followed";
const ANT_ORG = "org-followed-ant";
const T0 = Date.parse("2026-11-21T10:00:00Z");
/** The sliding window's length in ms (google_ai_window_length: a minute and its guard). */
let W = 0;

beforeAll(async () => {
  db = await freshDatabase("followed_limits");
  await db.sql`delete from public.google_ai_api_keys`;
  await db.sql`insert into public.google_ai_api_keys (key_alias, provider, env_var_name, project_id, priority)
               values ('openai-followed', 'openai', 'OPENAI_FOLLOWED_KEY', ${ORG}, 1),
                      ('anthropic-followed', 'anthropic', 'ANTHROPIC_FOLLOWED_KEY', ${ANT_ORG}, 1)`;
  await db.sql`update public.google_ai_priority_classes set kept_rpm_percent = null, kept_rpd_percent = null`;
  const [{ ms }] = await db.sql`select (extract(epoch from public.google_ai_window_length(
    (public.google_ai_admission_guard()).minute_guard_ms)) * 1000)::float8 as ms`;
  W = ms;
}, 60_000);

afterAll(async () => {
  await db?.drop();
});

async function openaiRow(model: string, rpm: number, tpm: number, mode: "follow" | "keep"): Promise<void> {
  await db.sql`insert into public.google_ai_model_limits (model, provider, rpm, tpm, provider_limits)
               values (${model}, 'openai', ${rpm}, ${tpm}, ${mode})`;
}

async function ask(model: string, at: number, call: { caller?: string; tokens?: number; wait?: number } = {}):
  Promise<ReserveAnswer & { max_tokens?: number }> {
  const [row] = await db.sql<{ r: ReserveAnswer }[]>`select public.google_ai_reserve_models_at(${iso(at)}::text::timestamptz,
    jsonb_populate_record(null::public.google_ai_reservation, ${reservation({ models: [model],
      estimated_tokens: call.tokens ?? 10, caller: call.caller ?? "followed", wait_left_ms: call.wait ?? 0 })}::text::jsonb)) as r`;
  return row!.r;
}

/** Admits one a second from `from` on; throws if one is refused. */
async function admitEach(model: string, from: number, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const a = await ask(model, from + i * 1000);
    expect(a.ok, `admission ${i + 1} of ${n}: ${JSON.stringify(a)}`).toBe(true);
  }
}

/** What the provider last stated for the group (rpm, tpm, rpd, itpm, otpm), as finalize writes it. */
async function stated(group: string, model: string, limits: (number | null)[]): Promise<void> {
  const text = `{${limits.map((l) => l ?? "NULL").join(",")}}`;
  const [{ n }] = await db.sql`with u as (update public.google_ai_usage_counters set stated_limits = ${text}::integer[],
      stated_heard = ${text}::integer[], stated_at = now(), stated_since = now()
    where quota_group = ${group} and model = ${model} returning 1) select count(*)::int as n from u`;
  expect(n).toBe(1);
}

/** The turns the model's tickets were given, ms after T0, earliest first. */
async function turns(model: string): Promise<number[]> {
  const rows = await db.sql`select expected_at::text as at from public.google_ai_queue where model = ${model}
                            order by expected_at`;
  return rows.map((r) => msOf(r.at) - T0);
}

describe("the queue's turns count the limits a following row's group follows", () => {
  it("raised from 6 to 12 with 12 in the window: three waiters get the turns of the first three to leave", async () => {
    const model = "followed-raised";
    await openaiRow(model, 6, 1_000_000, "follow");
    await admitEach(model, T0, 1);
    await stated(ORG, model, [12, 1_000_000, null, null, null]);
    await admitEach(model, T0 + 1000, 11);
    const asked: ReserveAnswer[] = [];
    for (const [i, caller] of ["w1", "w2", "w3"].entries()) {
      asked.push(await ask(model, T0 + 12_000 + i * 100, { caller, wait: 120_000 }));
    }
    expect(asked.map((a) => a.ok)).toEqual([false, false, false]);
    expect(asked.every((a) => a.queue !== undefined), JSON.stringify(asked)).toBe(true);
    // At the row's 6, the seventh admission (6 s in) would have been the first to make room.
    expect(await turns(model)).toEqual([W, 1000 + W, 2000 + W]);
    // The first turn comes: its ticket is admitted then.
    const first = asked.find((a) => msOf(a.queue!.expected_at) === T0 + W)!;
    const [{ caller }] = await db.sql`select caller from public.google_ai_queue where ticket_id = ${first.queue!.ticket}`;
    const [row] = await db.sql<{ r: ReserveAnswer }[]>`select public.google_ai_reserve_models_at(${iso(T0 + W + 1)}::text::timestamptz,
      jsonb_populate_record(null::public.google_ai_reservation, ${reservation({ models: [model], estimated_tokens: 10,
        caller, queue_ticket: first.queue!.ticket, wait_left_ms: 60_000 })}::text::jsonb)) as r`;
    expect(row!.r).toMatchObject({ ok: true });
  });

  it("lowered from 12 to 6 with 6 in the window: the second waiter's turn is the second admission's to leave", async () => {
    const model = "followed-lowered";
    await openaiRow(model, 12, 1_000_000, "follow");
    await admitEach(model, T0, 1);
    await stated(ORG, model, [6, 1_000_000, null, null, null]);
    await admitEach(model, T0 + 1000, 5);
    expect(await ask(model, T0 + 6000)).toMatchObject({ ok: false, limit: "rpm" });
    expect(await ask(model, T0 + 6000, { caller: "w1", wait: 120_000 })).toMatchObject({ ok: false, limit: "rpm" });
    expect(await ask(model, T0 + 6500, { caller: "w2", wait: 120_000 })).toMatchObject({ ok: false, limit: "rpm" });
    // At the row's 12, the second would count 6 slots free now and be told the booking's time, the first's.
    expect(await turns(model)).toEqual([W, 1000 + W]);
  });

  it("a row that keeps its own at 6 while its provider says 12: its queue counts 6", async () => {
    const model = "kept-queue";
    await openaiRow(model, 6, 1_000_000, "keep");
    await admitEach(model, T0, 1);
    await stated(ORG, model, [12, 1_000_000, null, null, null]);
    await admitEach(model, T0 + 1000, 5);
    expect(await ask(model, T0 + 6000, { caller: "w1", wait: 120_000 })).toMatchObject({ ok: false, limit: "rpm" });
    expect(await ask(model, T0 + 6500, { caller: "w2", wait: 120_000 })).toMatchObject({ ok: false, limit: "rpm" });
    expect(await turns(model)).toEqual([W, 1000 + W]);
  });
});

describe("too large, judged by the limits a following row's groups follow", () => {
  it("a raise lets in a request larger than the row's TPM", async () => {
    const up = "followed-tpm-raised";
    await openaiRow(up, 100, 1000, "follow");
    await admitEach(up, T0, 1);
    expect(await ask(up, T0 + 1000, { tokens: 3000 })).toMatchObject({ ok: false, limit: "too_large", max_tokens: 1000 });
    await stated(ORG, up, [100, 5000, null, null, null]);
    expect(await ask(up, T0 + 2000, { tokens: 3000 })).toMatchObject({ ok: true });
  });

  it("a lowering refuses a request within the row's TPM but above the provider's, naming the provider's", async () => {
    const down = "followed-tpm-lowered";
    await openaiRow(down, 100, 5000, "follow");
    await admitEach(down, T0, 1);
    expect(await ask(down, T0 + 1000, { tokens: 3000 })).toMatchObject({ ok: true });
    await stated(ORG, down, [100, 1000, null, null, null]);
    expect(await ask(down, T0 + 2000, { tokens: 3000 })).toMatchObject({ ok: false, limit: "too_large", max_tokens: 1000 });
  });
});

describe("the usage view", () => {
  it("shows a following row's group at the limit its provider stated, and what is left of it", async () => {
    const model = "followed-view";
    await openaiRow(model, 6, 1_000_000, "follow");
    // (The view reads the database's clock: these admissions are in its window now.)
    const now = Date.now();
    await admitEach(model, now, 1);
    await stated(ORG, model, [12, 2_000_000, null, null, null]);
    await admitEach(model, now + 1, 2);
    const [row] = await db.sql`select rpm_limit, rpm_left, tpm_limit from public.google_ai_usage_now
                               where model = ${model} and quota_group = ${ORG}`;
    expect(row).toEqual({ rpm_limit: 12, rpm_left: 9, tpm_limit: 2_000_000 });
  });
});

describe("Anthropic's token buckets followed", () => {
  it("itpm stated at 1,000 under the row's 100,000: a request of 3,000 input tokens refused too_large naming 1,000", async () => {
    const model = "followed-claude";
    await db.sql`insert into public.google_ai_model_limits (model, provider, rpm, itpm, otpm, provider_limits)
                 values (${model}, 'anthropic', 50, 100000, 100000, 'follow')`;
    await admitEach(model, T0, 1);
    expect(await ask(model, T0 + 1000, { tokens: 3000 })).toMatchObject({ ok: true });
    await stated(ANT_ORG, model, [50, null, null, 1000, 100000]);
    expect(await ask(model, T0 + 2000, { tokens: 3000 })).toMatchObject({ ok: false, limit: "too_large", max_tokens: 1000 });
  });
});
