// Every refusal names its cause, one meaning each (google_ai_refusal_cause and the booking's own):
// on a real PostgreSQL with the clock injected, each cause is brought about on its own model and read
// from the answer and from the attempt row the refusal wrote; `limit` stays beside it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { iso } from "../support/microseconds.ts";
import { someoneWaits } from "../support/someone-waits.ts";
import type { ReserveAnswer as Answer } from "../support/reserve-answer.ts";
import { oneKeyDatabase, type TestDatabase } from "../support/test-database.ts";
import { reservation } from "../support/reserve-answer.ts";

let db: TestDatabase;
const T0 = Date.parse("2026-11-21T10:00:00Z");
const WINDOW_MS = 61_000;

beforeAll(async () => {
  db = await oneKeyDatabase("refusal_causes", { alias: "c1", envVar: "KEY_C1", project: "proj-c" });
}, 60_000);

afterAll(async () => {
  await db?.drop();
});

interface Ask {
  at: number;
  model: string;
  caller?: string;
  priority?: string;
  waitLeftMs?: number;
  requestId?: string;
}

async function admit(a: Ask): Promise<Answer> {
  const [row] = await db.sql<{ r: Answer }[]>`select public.google_ai_reserve_models_at(${iso(a.at)}::text::timestamptz,
    jsonb_populate_record(null::public.google_ai_reservation, ${reservation({ models: [a.model], estimated_tokens: 10,
      caller: a.caller ?? "notebook", request_id: a.requestId ?? null, priority: a.priority ?? "batch",
      wait_left_ms: a.waitLeftMs ?? 0 })}::text::jsonb)) as r`;
  return row!.r;
}

async function model(name: string, limits: { rpm?: number; rpd?: number; burst?: number }) {
  await db.sql`insert into public.google_ai_model_limits (model, rpm, tpm, rpd, spread_burst)
               values (${name}, ${limits.rpm ?? null}, null, ${limits.rpd ?? null}, ${limits.burst ?? null})`;
}

/** The refusal row a request wrote: its limit and its cause. */
async function refusalRow(requestId: string) {
  const [row] = await db.sql<{ limit_hit: string; refusal_cause: string }[]>`
    select limit_hit, refusal_cause from public.google_ai_attempts where request_id = ${requestId} and status = 'refused'`;
  return row;
}

describe("a refusal's cause", () => {
  it("window_full: the sliding window has no room", async () => {
    await model("cause-window", { rpm: 2 });
    await admit({ at: T0, model: "cause-window" });
    await admit({ at: T0, model: "cause-window" });
    expect(await admit({ at: T0, model: "cause-window", requestId: "w-1" })).toMatchObject({
      ok: false, limit: "rpm", cause: "window_full",
    });
    expect(await refusalRow("w-1")).toEqual({ limit_hit: "rpm", refusal_cause: "window_full" });
  });

  it("share_kept: the window has room, but another class's share keeps it", async () => {
    await model("cause-share", { rpm: 3 });
    await db.sql`insert into public.google_ai_quota_shares (model, priority_class, reserved_rpm)
                 values ('cause-share', 'interactive', 1)`;
    await admit({ at: T0, model: "cause-share" });
    await admit({ at: T0, model: "cause-share" });
    expect(await admit({ at: T0, model: "cause-share", requestId: "s-1" })).toMatchObject({
      ok: false, limit: "rpm", cause: "share_kept",
    });
    expect(await refusalRow("s-1")).toEqual({ limit_hit: "rpm", refusal_cause: "share_kept" });
    // The person's share is there.
    expect((await admit({ at: T0, model: "cause-share", caller: "bot", priority: "interactive" })).ok).toBe(true);
  });

  it("share_kept while others wait: the window's room is the share's, not a turn of the queue", async () => {
    // The queue counts, for a batch request, the window less what the interactive share keeps: the last
    // slot is the share's, so the cause is the share, not a full window or a turn.
    await model("cause-kept-queue", { rpm: 3 });
    await db.sql`insert into public.google_ai_quota_shares (model, priority_class, reserved_rpm)
                 values ('cause-kept-queue', 'interactive', 1)`;
    const leave = await someoneWaits(db.sql, "cause-kept-queue", iso(T0));
    expect((await admit({ at: T0, model: "cause-kept-queue" })).ok).toBe(true);
    expect((await admit({ at: T0, model: "cause-kept-queue" })).ok).toBe(true);
    expect(await admit({ at: T0 + 10, model: "cause-kept-queue", requestId: "kq-1" })).toMatchObject({
      ok: false, limit: "rpm", cause: "share_kept",
    });
    expect(await refusalRow("kq-1")).toEqual({ limit_hit: "rpm", refusal_cause: "share_kept" });
    await leave();
  });

  it("share_kept with no time: a waiting caller is answered at once, no retry time, while others wait", async () => {
    // The class's share keeps the whole window from batch, so no reopening serves it; the queue holds
    // a ticket, so the request has a place, and its turn must not become its retry time.
    await model("cause-kept-all", { rpm: 2 });
    await db.sql`insert into public.google_ai_quota_shares (model, priority_class, reserved_rpm)
                 values ('cause-kept-all', 'interactive', 2)`;
    const leave = await someoneWaits(db.sql, "cause-kept-all", iso(T0));
    const answer = await admit({ at: T0, model: "cause-kept-all", waitLeftMs: 30_000, requestId: "k-1" });
    expect(answer).toMatchObject({ ok: false, limit: "rpm", cause: "share_kept", retry_after_ms: null });
    expect(answer.queue).toBeUndefined();
    await leave();
  });

  it("spread: requests wait and this one's place in the schedule is later", async () => {
    await model("cause-spread", { rpm: 30, burst: 1 });
    // Someone waits for the model, behind everyone.
    await someoneWaits(db.sql, "cause-spread", iso(T0));
    expect((await admit({ at: T0, model: "cause-spread" })).ok).toBe(true);
    expect(await admit({ at: T0 + 10, model: "cause-spread", requestId: "p-1" })).toMatchObject({
      ok: false, limit: "rpm", cause: "spread",
    });
    expect(await refusalRow("p-1")).toEqual({ limit_hit: "rpm", refusal_cause: "spread" });
  });

  it("day_exhausted: the model's requests of the Pacific day are used up", async () => {
    await model("cause-day", { rpd: 1 });
    await admit({ at: T0, model: "cause-day" });
    expect(await admit({ at: T0 + 1000, model: "cause-day", requestId: "d-1" })).toMatchObject({
      ok: false, limit: "rpd", cause: "day_exhausted",
    });
    expect(await refusalRow("d-1")).toEqual({ limit_hit: "rpd", refusal_cause: "day_exhausted" });
  });

  it("queue_turn: the slot that came free is the turn of a ticket that waited", async () => {
    await model("cause-turn", { rpm: 1 });
    await admit({ at: T0, model: "cause-turn" });
    const waiter = await admit({ at: T0 + 1000, model: "cause-turn", caller: "waiter", waitLeftMs: 65_000 });
    expect(waiter.queue).toBeDefined();
    // The window reopens: the slot is the waiter's, not a newcomer's.
    expect(await admit({ at: T0 + WINDOW_MS + 1, model: "cause-turn", caller: "newcomer", requestId: "t-1" }))
      .toMatchObject({ ok: false, limit: "rpm", cause: "queue_turn" });
    expect(await refusalRow("t-1")).toEqual({ limit_hit: "rpm", refusal_cause: "queue_turn" });
  });

  it("upstream_cooldown: the group rests after its provider's 429", async () => {
    await model("cause-cool", { rpm: 10 });
    const [{ g }] = await db.sql<{ g: string }[]>`
      select public.google_ai_quota_group(k.project_id, k.id) as g from public.google_ai_api_keys k limit 1`;
    await db.sql`select public.google_ai_cooldown(${g}, 'cause-cool', ${iso(T0 + 30_000)}::text::timestamptz)`;
    expect(await admit({ at: T0, model: "cause-cool", requestId: "c-1" })).toMatchObject({
      ok: false, limit: "cooldown", cause: "upstream_cooldown",
    });
    expect(await refusalRow("c-1")).toEqual({ limit_hit: "cooldown", refusal_cause: "upstream_cooldown" });
  });

  it("budget: a caller's daily budget is used up; the request's own reasons are their limit", async () => {
    await model("cause-budget", { rpm: 10 });
    await db.sql`insert into public.google_ai_caller_budgets (caller, daily_max_requests) values ('frugal', 1)`;
    expect((await admit({ at: T0, model: "cause-budget", caller: "frugal" })).ok).toBe(true);
    expect(await admit({ at: T0, model: "cause-budget", caller: "frugal", requestId: "b-1" })).toMatchObject({
      ok: false, limit: "caller_budget", cause: "budget",
    });
    expect(await refusalRow("b-1")).toEqual({ limit_hit: "caller_budget", refusal_cause: "budget" });
    expect(await admit({ at: T0, model: "no-such-model" })).toMatchObject({ ok: false, limit: "unknown_model", cause: "unknown_model" });
  });
});

describe("a provider's cause and the refused row", () => {
  it("google_ai_cooldown_cause: the first-ending rest among active keys serving the model, never an inactive or deleted key's", async () => {
    await model("cause-money", { rpm: 10 });
    const [{ id: other }] = await db.sql<{ id: string }[]>`
      insert into public.google_ai_api_keys (key_alias, env_var_name, project_id, priority, is_active)
      values ('c2', 'KEY_C2', 'proj-other', 1, false) returning id`;
    try {
      // The other organization's rest ends first; its key is inactive.
      await db.sql`insert into public.google_ai_cooldowns (quota_group, model, cooldown_until, cause) values
        ('proj-other', 'cause-money', now() + interval '30 minutes', 'monthly_cap'),
        ('proj-c', 'cause-money', now() + interval '60 minutes', 'credits_depleted')`;
      const cause = async () =>
        (await db.sql<{ c: string | null }[]>`select public.google_ai_cooldown_cause('cause-money') as c`)[0]!.c;
      expect(await cause()).toBe("credits_depleted");
      await db.sql`update public.google_ai_api_keys set is_active = true where id = ${other}`;
      expect(await cause()).toBe("monthly_cap");
      await db.sql`delete from public.google_ai_api_keys where id = ${other}`;
      expect(await cause()).toBe("credits_depleted");
      // A key that serves only other models is not one that serves this one.
      await db.sql`insert into public.google_ai_api_keys (key_alias, env_var_name, project_id, priority, models)
                   values ('c3', 'KEY_C3', 'proj-other', 1, array['cause-window'])`;
      expect(await cause()).toBe("credits_depleted");
    } finally {
      await db.sql`delete from public.google_ai_api_keys where key_alias in ('c2', 'c3')`;
      await db.sql`delete from public.google_ai_cooldowns where model = 'cause-money'`;
    }
  });

  it("no_active_key: one refused row when no key serves; none when only the request's own exclusions leave none", async () => {
    await model("cause-keys", { rpm: 10 });
    await model("cause-keys-next", { rpm: 10 });
    const [{ id }] = await db.sql<{ id: string }[]>`select id from public.google_ai_api_keys where key_alias = 'c1'`;
    const reserve = async (models: string[], requestId: string, exclude: string[]) =>
      (await db.sql<{ r: Answer }[]>`select public.google_ai_reserve_models_at(${iso(T0)}::text::timestamptz,
        jsonb_populate_record(null::public.google_ai_reservation, ${reservation({ models, estimated_tokens: 10,
          caller: "notebook", request_id: requestId, exclude_key_ids: exclude, attempt: 2 })}::text::jsonb)) as r`)[0]!.r;
    const rows = async (requestId: string) =>
      (await db.sql`select model, limit_hit from public.google_ai_attempts where request_id = ${requestId}`)
        .map((r) => [r.model, r.limit_hit]);
    // A retry that left out the key its first call failed on: no key, no row (the gateway asks again).
    expect(await reserve(["cause-keys"], "k-retry", [id])).toMatchObject({ ok: false, limit: "no_active_key" });
    expect(await rows("k-retry")).toEqual([]);
    // The same through a chain: no model has a key once the exclusions are set aside, and no row says so.
    expect(await reserve(["cause-keys", "cause-keys-next"], "k-chain", [id])).toMatchObject({ limit: "no_active_key" });
    expect(await rows("k-chain")).toEqual([]);
    // No key at all: the refusal is the request's answer, written once.
    await db.sql`update public.google_ai_api_keys set is_active = false where id = ${id}`;
    try {
      expect(await reserve(["cause-keys"], "k-none", [])).toMatchObject({ ok: false, limit: "no_active_key" });
      expect(await rows("k-none")).toEqual([["cause-keys", "no_active_key"]]);
    } finally {
      await db.sql`update public.google_ai_api_keys set is_active = true where id = ${id}`;
    }
  });
});
