// The quota a caller can see, on a real PostgreSQL with the clock injected: what an answer of the
// reservation carries (google_ai_answer_quota: the booked group as of this booking; for a refusal the
// best candidate group, its reset equal to the refusal's retry time), what the quota route reports
// (google_ai_quota_report: sums over quota groups, the queue per class, the caller's budgets: a
// token's and its client's, or a service caller's daily budget by its label), that the answer's
// quota read in the reservation's own statement sees the booking and can never roll it back, and
// who may call them.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type Sql } from "../../shared/db/migrate.ts";
import { gatewayRoleUrl } from "../../shared/db/gateway-role.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";
import type { ModelQuota, WithdrawnModel } from "../../clients/typescript/eve-gateway.ts";
import { reservation } from "../support/reserve-answer.ts";

let db: TestDatabase;
let gateway: Sql;
// 10:00 UTC is 02:00 in Los Angeles (PST): far from the Pacific midnight and its guard.
const T0 = Date.parse("2026-11-21T10:00:00Z");
const WINDOW_MS = 61_000; // 60 s + the default minute guard
const DAY_GUARD_MS = 5_000;
const NEXT_PACIFIC_MIDNIGHT = Date.parse("2026-11-22T08:00:00Z");
const iso = (ms: number) => new Date(ms).toISOString();

interface Quota {
  model: string;
  quota_group: string;
  rpm: number | null;
  requests_left: number | null;
  requests_reset_ms: number | null;
  tpm: number | null;
  tokens_left: number | null;
  tokens_reset_ms: number | null;
  rpd: number | null;
  day_left: number | null;
  day_reset_ms: number | null;
  kept?: Kept | null;
}

/** What a model's shares keep, per quota group, as one requester sees them (google_ai_quota_kept). */
interface Kept {
  rpm_for_others: number | null;
  rpm_for_you: number | null;
  rpd_for_others: number | null;
  rpd_for_you: number | null;
}

interface Answer {
  ok: boolean;
  limit?: string;
  retry_after_ms?: number | null;
  quota_group?: string;
  model?: string;
}

beforeAll(async () => {
  db = await freshDatabase("quota_visibility");
  await db.sql`delete from public.google_ai_api_keys`;
  await db.sql`insert into public.google_ai_model_limits (model, rpm, tpm, rpd) values
    ('qv-solo', 5, 1000, 20), ('qv-pair', 5, 1000, 20), ('qv-open', null, null, null),
    ('qv-keyless', 5, 1000, 20)`;
  await db.sql`insert into public.google_ai_api_keys (key_alias, env_var_name, project_id, priority, models) values
    ('solo', 'KEY_SOLO', 'proj-solo', 1, '{qv-solo,qv-open}'),
    ('pair-a', 'KEY_PAIR_A', 'proj-a', 1, '{qv-pair}'),
    ('pair-b', 'KEY_PAIR_B', 'proj-b', 1, '{qv-pair}')`;
  gateway = connect(await gatewayRoleUrl(db.url), { max: 1 });
}, 60_000);

afterAll(async () => {
  await gateway?.end();
  await db?.drop();
});

async function reserveAt(at: number, model: string, tokens = 10, exclude: string[] = [], caller = "qv"): Promise<Answer> {
  const [row] = await db.sql<{ r: Answer }[]>`select public.google_ai_reserve_models_at(${iso(at)}::timestamptz,
    jsonb_populate_record(null::public.google_ai_reservation, ${reservation({ models: [model], estimated_tokens: tokens,
      caller, exclude_key_ids: exclude })}::text::jsonb)) as r`;
  return row!.r;
}

async function keyId(alias: string): Promise<string> {
  const [row] = await db.sql<{ id: string }[]>`select id from public.google_ai_api_keys where key_alias = ${alias}`;
  return row!.id;
}

async function quotaAt(at: number, answer: unknown, model: string, exclude: string[] = []): Promise<Quota | null> {
  const [row] = await db.sql<{ q: Quota | null }[]>`select public.google_ai_answer_quota_at(
    p_now => ${iso(at)}::timestamptz, p_answer => ${db.sql.json(answer as never)}::jsonb, p_model => ${model},
    p_exclude_key_ids => ${db.sql.array(exclude)}::uuid[]) as q`;
  return row!.q;
}

async function reset() {
  await db.sql`delete from public.google_ai_usage_counters`;
  await db.sql`delete from public.google_ai_cooldowns`;
  await db.sql`delete from public.google_ai_queue`;
}

describe("the quota an answer carries", () => {
  it("after 2 admissions on RPM 5: 3 requests left, the tokens and the day as booked, resets from the oldest", async () => {
    await reset();
    await reserveAt(T0, "qv-solo", 100);
    const second = await reserveAt(T0 + 2_000, "qv-solo", 50);
    expect(second.ok).toBe(true);
    const q = await quotaAt(T0 + 2_000, second, "qv-solo");
    expect(q).toEqual({
      model: "qv-solo",
      quota_group: "proj-solo",
      rpm: 5,
      requests_left: 3,
      requests_reset_ms: WINDOW_MS - 2_000, // the first admission leaves the window then
      tpm: 1000,
      tokens_left: 850,
      tokens_reset_ms: WINDOW_MS - 2_000,
      rpd: 20,
      day_left: 18,
      day_reset_ms: NEXT_PACIFIC_MIDNIGHT + DAY_GUARD_MS - (T0 + 2_000),
      // The seed's default share of `interactive` (20% of RPM, 10% of RPD, at least 1): this
      // service caller's class, so it is kept for it, nothing for others.
      kept: { rpm_for_others: 0, rpm_for_you: 1, rpd_for_others: 0, rpd_for_you: 2 },
    });
    // Once the first admission has left the window, its request and tokens are back.
    const later = await quotaAt(T0 + WINDOW_MS + 1, second, "qv-solo");
    expect(later).toMatchObject({ requests_left: 4, tokens_left: 950, requests_reset_ms: 2_000 - 1, day_left: 18 });
  });

  it("a refusal carries 0 requests left and a reset equal to its retry time", async () => {
    await reset();
    for (let i = 0; i < 5; i++) expect((await reserveAt(T0 + i * 1_000, "qv-solo")).ok).toBe(true);
    const at = T0 + 30_000;
    const refusal = await reserveAt(at, "qv-solo");
    expect(refusal).toMatchObject({ ok: false, limit: "rpm" });
    const q = (await quotaAt(at, refusal, "qv-solo"))!;
    expect(q.requests_left).toBe(0);
    expect(q.requests_reset_ms).toBe(refusal.retry_after_ms);
    expect(q.requests_reset_ms).toBe(WINDOW_MS - 30_000);
  });

  it("for a refusal, names the group that can admit soonest among the candidates", async () => {
    await reset();
    // proj-a fills at T0, proj-b ten seconds later: proj-a reopens first.
    const [a, b] = [await keyId("pair-a"), await keyId("pair-b")];
    for (let i = 0; i < 5; i++) expect((await reserveAt(T0, "qv-pair", 10, [b])).quota_group).toBe("proj-a");
    for (let i = 0; i < 5; i++) expect((await reserveAt(T0 + 10_000, "qv-pair", 10, [a])).quota_group).toBe("proj-b");
    const at = T0 + 20_000;
    const refusal = await reserveAt(at, "qv-pair");
    expect(refusal).toMatchObject({ ok: false, limit: "rpm", retry_after_ms: WINDOW_MS - 20_000 });
    const q = (await quotaAt(at, refusal, "qv-pair"))!;
    expect(q).toMatchObject({ quota_group: "proj-a", requests_left: 0, requests_reset_ms: refusal.retry_after_ms });
    // Leaving that group's key out, the other group is the best one left.
    expect(await quotaAt(at, refusal, "qv-pair", [a]))
      .toMatchObject({ quota_group: "proj-b", requests_reset_ms: WINDOW_MS - 10_000 });
  });

  it("a group cooling down has nothing left until the cooldown ends; a per-day cooldown takes the day", async () => {
    await reset();
    await db.sql`insert into public.google_ai_cooldowns (quota_group, model, cooldown_until, reason)
                 values ('proj-solo', 'qv-solo', ${iso(T0 + 40_000)}::timestamptz, 'RESOURCE_EXHAUSTED')`;
    const refusal = await reserveAt(T0, "qv-solo");
    expect(refusal).toMatchObject({ ok: false, limit: "cooldown", retry_after_ms: 40_000 });
    const q = (await quotaAt(T0, refusal, "qv-solo"))!;
    expect(q).toMatchObject({ requests_left: 0, tokens_left: 0, requests_reset_ms: 40_000, tokens_reset_ms: 40_000, day_left: 20 });
    await db.sql`update public.google_ai_cooldowns set cooldown_until = ${iso(NEXT_PACIFIC_MIDNIGHT)}::timestamptz
                 where quota_group = 'proj-solo'`;
    const perDay = (await quotaAt(T0, refusal, "qv-solo"))!;
    expect(perDay.day_left).toBe(0);
  });

  it("reads the Pacific day as the booking does: a used-up day, yesterday's row, the guard after midnight", async () => {
    await reset();
    await db.sql`update public.google_ai_model_limits set rpd = 2 where model = 'qv-solo'`;
    try {
      await reserveAt(T0, "qv-solo");
      await reserveAt(T0 + 1_000, "qv-solo");
      const refusal = await reserveAt(T0 + 2_000, "qv-solo");
      expect(refusal).toMatchObject({ ok: false, limit: "rpd" });
      const q = (await quotaAt(T0 + 2_000, refusal, "qv-solo"))!;
      expect(q.day_left).toBe(0);
      expect(q.day_reset_ms).toBe(refusal.retry_after_ms);
      // Within the guard after midnight yesterday's count still binds; after it, the day is new.
      const justAfter = (await quotaAt(NEXT_PACIFIC_MIDNIGHT + 1_000, refusal, "qv-solo"))!;
      expect(justAfter).toMatchObject({ day_left: 0, day_reset_ms: DAY_GUARD_MS - 1_000 });
      const afterGuard = (await quotaAt(NEXT_PACIFIC_MIDNIGHT + DAY_GUARD_MS, refusal, "qv-solo"))!;
      expect(afterGuard.day_left).toBe(2);
    } finally {
      await db.sql`update public.google_ai_model_limits set rpd = 20 where model = 'qv-solo'`;
    }
  });

  it("leaves out what the model has no limit for, and knows nothing without a model or a group", async () => {
    await reset();
    const open = await reserveAt(T0, "qv-open");
    expect(open.ok).toBe(true);
    expect(await quotaAt(T0, open, "qv-open")).toMatchObject({
      rpm: null, requests_left: null, requests_reset_ms: null, tpm: null, tokens_left: null, rpd: null, day_left: null,
    });
    expect(await quotaAt(T0, await reserveAt(T0, "no-such-model"), "no-such-model")).toBeNull();
    expect(await quotaAt(T0, await reserveAt(T0, "qv-keyless"), "qv-keyless")).toBeNull();
    expect(await quotaAt(T0, { ok: false, limit: "model_not_allowed", retry_after_ms: null }, "qv-solo")).toBeNull();
    // A token's budget refusal still shows the model's quota (the model is the caller's).
    expect(await quotaAt(T0, { ok: false, limit: "token_budget", retry_after_ms: null }, "qv-solo"))
      .toMatchObject({ model: "qv-solo", requests_left: 5 });
  });

  it("read in the reservation's own statement, sees the booking it just made", async () => {
    await reset();
    const rows = await gateway<{ r: Answer; q: Quota }[]>`
      with reserved as materialized (
        select public.google_ai_reserve_models(p_models => array['qv-solo'], p_estimated_tokens => 40, p_caller => 'qv',
          p_request_id => null) as r)
      select reserved.r, public.google_ai_answer_quota(p_answer => reserved.r, p_model => 'qv-solo') as q
      from reserved`;
    expect(rows).toHaveLength(1);
    expect(rows[0]!.r.ok).toBe(true);
    expect(rows[0]!.q).toMatchObject({ quota_group: "proj-solo", requests_left: 4, tokens_left: 960, day_left: 19 });
  });

  it("never rolls the reservation back: answers it cannot read are no quota, and the booking stands", async () => {
    await reset();
    // What each is read as: a success that names no group, or a refusal (of the model it names, else of the model asked).
    const odd: [string, string | null][] = [
      ['{"ok": true}', null], ['{"ok": true, "quota_group": 7}', null], ['{"ok": "perhaps", "model": 7}', null],
      ['"text"', "qv-solo"], ["[1, 2]", "qv-solo"], ["null", "qv-solo"],
    ];
    for (const [answer, model] of odd) {
      const [row] = await gateway<{ r: Answer; q: Quota | null }[]>`
        with reserved as materialized (
          select public.google_ai_reserve_models(p_models => array['qv-open'], p_estimated_tokens => 1, p_caller => 'qv-odd',
            p_request_id => null) as r)
        select reserved.r, public.google_ai_answer_quota(p_answer => ${answer}::text::jsonb, p_model => 'qv-solo') as q
        from reserved`;
      expect(row!.r.ok, answer).toBe(true);
      expect(row!.q?.model ?? null, answer).toBe(model);
    }
    const [{ n }] = await db.sql<{ n: number }[]>`
      select count(*)::int as n from public.google_ai_attempts where caller = 'qv-odd' and status = 'reserved'`;
    expect(n).toBe(odd.length);
  });
});

interface Report {
  ok: boolean;
  status?: string;
  as_of: string;
  caller: { kind: string; client: string | null; priority_class: string };
  budget: Record<string, number | string | null>;
  models: ModelQuota[];
  withdrawn: WithdrawnModel[];
}

async function reportAt(at: number, tokenHash: string | null = null, caller: string | null = null): Promise<Report> {
  const [row] = await db.sql<{ r: Report }[]>`
    select public.google_ai_quota_report_at(${iso(at)}::timestamptz, ${tokenHash}, ${caller}) as r`;
  return row!.r;
}

describe("the quota route's report", () => {
  it("sums a model over its quota groups, with the earliest reset, and counts the live queue per class", async () => {
    await reset();
    for (let i = 0; i < 3; i++) expect((await reserveAt(T0 + i * 1_000, "qv-pair", 100)).ok).toBe(true);
    // Two live tickets (interactive, batch) and one whose lease ran out.
    for (const [cls, lease] of [["interactive", T0 + 60_000], ["batch", T0 + 60_000], ["batch", T0 - 1]] as const) {
      await db.sql`insert into public.google_ai_queue (model, priority_class, class_rank, caller, turn, enqueued_at,
          tokens, limit_hit, expected_at, lease_until, position)
        values ('qv-pair', ${cls}, (select rank from public.google_ai_priority_classes where name = ${cls}), 'waiter', 1, ${iso(T0)}::timestamptz, 10, 'rpm',
          ${iso(T0 + 61_000)}::timestamptz, ${iso(lease)}::timestamptz, 1)`;
    }
    const r = await reportAt(T0 + 5_000);
    expect(r.ok).toBe(true);
    expect(r.caller).toEqual({ kind: "service", client: null, priority_class: "interactive" });
    expect(Object.values(r.budget).every((v) => v === null)).toBe(true);
    const pair = r.models.find((m) => m.model === "qv-pair")!;
    expect(pair).toEqual({
      model: "qv-pair",
      provider: "google",
      limits: { rpm: 5, tpm: 1000, rpd: 20 },
      quota_groups: 2,
      cooling_down: 0,
      minute: { requests_left: 7, requests_reset_ms: WINDOW_MS - 5_000, tokens_left: 1700, tokens_reset_ms: WINDOW_MS - 5_000 },
      day: { requests_left: 37, resets_at: expect.any(String), reset_ms: NEXT_PACIFIC_MIDNIGHT + DAY_GUARD_MS - (T0 + 5_000) },
      queue: { interactive: 1, batch: 1 },
      cooldowns: [],
      kept: { rpm_for_others: 0, rpm_for_you: 1, rpd_for_others: 0, rpd_for_you: 2 },
      // The service key sees the limits its provider states beside the row's (none stated here).
      provider_limits: [],
    });
    expect(Date.parse(pair.day.resets_at!)).toBe(NEXT_PACIFIC_MIDNIGHT + DAY_GUARD_MS);
    // A service caller sees every active model row; a model without a key has no group and nothing left.
    const active = await db.sql<{ model: string }[]>`select model from public.google_ai_model_limits where is_active order by model`;
    expect(r.models.map((m) => m.model)).toEqual(active.map((m) => m.model));
    expect(r.models.find((m) => m.model === "qv-keyless")).toMatchObject({ quota_groups: 0, minute: { requests_left: 0 }, day: { requests_left: 0 } });
    // A group cooling down counts nothing for the minute.
    await db.sql`insert into public.google_ai_cooldowns (quota_group, model, cooldown_until, reason, cause)
                 values ('proj-b', 'qv-pair', ${iso(T0 + 30_000)}::timestamptz, 'RESOURCE_EXHAUSTED', 'minute')`;
    const [{ n }] = await db.sql<{ n: number }[]>`
      select window_requests as n from public.google_ai_usage_counters where quota_group = 'proj-a' and model = 'qv-pair'`;
    const cooled = (await reportAt(T0 + 5_000)).models.find((m) => m.model === "qv-pair")!;
    expect(cooled.cooling_down).toBe(1);
    expect(cooled.minute.requests_left).toBe(5 - n);
    // …and the report names its cause and end (docs/google-429s.md).
    expect(cooled.cooldowns).toEqual([
      { quota_group: "proj-b", cause: "minute", cooldown_until: expect.any(String), retry_after_ms: 25_000 },
    ]);
  });

  it("for a token: only its models, its budgets and its client's day left, and its class", async () => {
    await reset();
    const [{ c }] = await db.sql<{ c: { client_id: string } }[]>`
      select public.google_ai_create_client('qv-notebook', array['qv-solo'], p_daily_max_requests => 50) as c`;
    await db.sql`insert into public.google_ai_tokens (client_id, token_hash, models, expires_at, max_requests, requests_used, tokens_used)
      values (${c.client_id}, 'hash-live', '{qv-solo}', ${iso(T0 + 3_600_000)}::timestamptz, 10, 3, 500),
             (${c.client_id}, 'hash-expired', '{qv-solo}', ${iso(T0 - 1)}::timestamptz, null, 0, 0)`;
    await db.sql`update public.google_ai_clients set day_bucket = public.google_ai_pacific_day(${iso(T0)}::timestamptz),
                 requests_today = 12 where id = ${c.client_id}`;
    const r = await reportAt(T0, "hash-live");
    expect(r.caller).toEqual({ kind: "token", client: "qv-notebook", priority_class: "batch" });
    expect(r.models.map((m) => m.model)).toEqual(["qv-solo"]);
    // A batch client: the default share of `interactive` is kept from it.
    expect(r.models[0]!.kept).toEqual({ rpm_for_others: 1, rpm_for_you: 0, rpd_for_others: 2, rpd_for_you: 0 });
    expect(r.budget).toMatchObject({
      token_requests_left: 7, token_tokens_left: null, daily_requests_left: 38, daily_tokens_left: null,
    });
    expect(Date.parse(r.budget.daily_resets_at as string)).toBe(NEXT_PACIFIC_MIDNIGHT);
    // A cooldown shows its cause and end, never the quota group's name (a project id is the operator's).
    await db.sql`insert into public.google_ai_cooldowns (quota_group, model, cooldown_until, reason, cause)
                 values ('proj-secret', 'qv-solo', ${iso(T0 + 30_000)}::timestamptz, 'RESOURCE_EXHAUSTED', 'spend_cap')`;
    const cooled = (await reportAt(T0, "hash-live")).models[0]!;
    expect(cooled.cooldowns).toEqual([
      { cause: "spend_cap", cooldown_until: expect.any(String), retry_after_ms: 30_000 },
    ]);
    expect(JSON.stringify(await reportAt(T0, "hash-live"))).not.toContain("proj-secret");
    // …which a service caller still sees.
    expect((await reportAt(T0)).models.find((m) => m.model === "qv-solo")!.cooldowns).toEqual([
      { quota_group: "proj-secret", cause: "spend_cap", cooldown_until: expect.any(String), retry_after_ms: 30_000 },
    ]);
    await db.sql`delete from public.google_ai_cooldowns`;
    expect(await reportAt(T0, "hash-expired")).toEqual({ ok: false, status: "token_expired" });
    expect(await reportAt(T0, "no-such-hash")).toEqual({ ok: false, status: "token_invalid" });
    await db.sql`update public.google_ai_clients set revoked_at = now() where id = ${c.client_id}`;
    expect(await reportAt(T0, "hash-live")).toEqual({ ok: false, status: "token_revoked" });
  });

  it("names each model's provider, and sums only that provider's groups: an OpenAI organization for gpt-4o", async () => {
    await reset();
    // An OpenAI key for every OpenAI model (models null): it is gpt-4o's group and no Google model's.
    await db.sql`insert into public.google_ai_api_keys (key_alias, env_var_name, project_id, priority, models, provider)
                 values ('qv-openai', 'OPENAI_API_KEY_QV', 'org-qv', 1, null, 'openai')`;
    try {
      const booked = await reserveAt(T0, "gpt-4o", 100);
      expect(booked).toMatchObject({ ok: true, quota_group: "org-qv" });
      const r = await reportAt(T0 + 1_000);
      const rows = await db.sql<{ model: string; provider: string }[]>`
        select model, provider from public.google_ai_model_limits where is_active order by model`;
      expect(r.models.map((m) => [m.model, m.provider])).toEqual(rows.map((m) => [m.model, m.provider]));
      const gpt = r.models.find((m) => m.model === "gpt-4o")!;
      expect(gpt).toMatchObject({ provider: "openai", quota_groups: 1 });
      expect(gpt.minute.requests_left).toBe(gpt.limits.rpm! - 1);
      expect(r.models.find((m) => m.model === "qv-solo")).toMatchObject({ provider: "google", quota_groups: 1 });
      expect(r.models.find((m) => m.model === "qv-keyless")).toMatchObject({ provider: "google", quota_groups: 0 });

      // A withdrawn model says whose 404 it was.
      await db.sql`update public.google_ai_model_limits set withdrawn_at = ${iso(T0)}::timestamptz,
                     withdrawn_message = 'gone' where model in ('gpt-4o', 'qv-pair')`;
      expect((await reportAt(T0 + 1_000)).withdrawn).toEqual([
        expect.objectContaining({ model: "gpt-4o", provider: "openai", withdrawn_message: "gone" }),
        expect.objectContaining({ model: "qv-pair", provider: "google", withdrawn_message: "gone" }),
      ]);
    } finally {
      await db.sql`update public.google_ai_model_limits set withdrawn_at = null, withdrawn_message = null
                   where model in ('gpt-4o', 'qv-pair')`;
      await db.sql`delete from public.google_ai_api_keys where key_alias = 'qv-openai'`;
    }
  });
});

describe("a service caller's own daily budget", () => {
  it("is what its admissions left of its row, the one the booking refuses by, and starts again at Pacific midnight", async () => {
    await reset();
    await db.sql`insert into public.google_ai_caller_budgets (caller, daily_max_requests, daily_max_tokens)
                 values ('qv-budgeted', 3, 100)`;
    try {
      expect((await reserveAt(T0, "qv-open", 30, [], "qv-budgeted")).ok).toBe(true);
      expect((await reserveAt(T0 + 1_000, "qv-open", 20, [], "qv-budgeted")).ok).toBe(true);
      const r = await reportAt(T0 + 2_000, null, "qv-budgeted");
      expect(r.caller).toEqual({ kind: "service", client: null, priority_class: "interactive" });
      expect(r.budget).toMatchObject({
        token_requests_left: null, token_tokens_left: null, token_expires_at: null,
        daily_requests_left: 1, daily_tokens_left: 50,
      });
      expect(Date.parse(r.budget.daily_resets_at as string)).toBe(NEXT_PACIFIC_MIDNIGHT);
      // What is left is what the booking allows: one token more is refused, exactly that is admitted.
      expect(await reserveAt(T0 + 3_000, "qv-open", 51, [], "qv-budgeted"))
        .toMatchObject({ ok: false, limit: "caller_budget", retry_after_ms: NEXT_PACIFIC_MIDNIGHT - (T0 + 3_000) });
      expect((await reserveAt(T0 + 3_000, "qv-open", 50, [], "qv-budgeted")).ok).toBe(true);
      expect((await reportAt(T0 + 4_000, null, "qv-budgeted")).budget)
        .toMatchObject({ daily_requests_left: 0, daily_tokens_left: 0 });
      // The row still holds yesterday's counts after midnight: the new day reads none of them.
      expect((await reportAt(NEXT_PACIFIC_MIDNIGHT, null, "qv-budgeted")).budget)
        .toMatchObject({ daily_requests_left: 3, daily_tokens_left: 100 });
      // Only the caller's own row counts, and only what it limits.
      await db.sql`update public.google_ai_caller_budgets set daily_max_tokens = null where caller = 'qv-budgeted'`;
      expect((await reportAt(T0 + 4_000, null, "qv-budgeted")).budget)
        .toMatchObject({ daily_requests_left: 0, daily_tokens_left: null });
    } finally {
      await db.sql`delete from public.google_ai_caller_budgets where caller = 'qv-budgeted'`;
    }
  });

  it("is null for a label without a row, and a token's report ignores the label", async () => {
    await reset();
    await db.sql`insert into public.google_ai_caller_budgets (caller, daily_max_requests) values ('qv-budgeted', 3)`;
    try {
      for (const caller of ["qv-unbudgeted", null]) {
        const r = await reportAt(T0, null, caller);
        expect(r.ok).toBe(true);
        expect(Object.values(r.budget).every((v) => v === null), String(caller)).toBe(true);
      }
      const [{ c }] = await db.sql<{ c: { client_id: string } }[]>`
        select public.google_ai_create_client('qv-unlimited', array['qv-solo']) as c`;
      await db.sql`insert into public.google_ai_tokens (client_id, token_hash, models, expires_at)
        values (${c.client_id}, 'hash-unlimited', '{qv-solo}', ${iso(T0 + 3_600_000)}::timestamptz)`;
      const token = await reportAt(T0, "hash-unlimited", "qv-budgeted");
      expect(token.caller).toMatchObject({ kind: "token", client: "qv-unlimited" });
      expect(token.budget).toMatchObject({ daily_requests_left: null, daily_resets_at: null });
    } finally {
      await db.sql`delete from public.google_ai_caller_budgets where caller = 'qv-budgeted'`;
    }
  });
});

describe("who may call them", () => {
  it("the functions' role and operators call the two RPCs; nobody but the owner the clock variants", async () => {
    const [{ r }] = await gateway<{ r: Report }[]>`select public.google_ai_quota_report() as r`;
    expect(r.ok).toBe(true);
    const rights = await db.sql<{ fn: string; role: string; allowed: boolean }[]>`
      select f.fn, r.role, has_function_privilege(r.role, f.fn, 'execute') as allowed
      from unnest(array['public.google_ai_answer_quota(jsonb, text, uuid[])', 'public.google_ai_quota_report(text, text)',
                        'public.google_ai_answer_quota_at(timestamptz, jsonb, text, uuid[])',
                        'public.google_ai_quota_report_at(timestamptz, text, text)',
                        'public.google_ai_group_quota(text, text, integer, integer, integer, timestamptz)']) f(fn)
      cross join unnest(array['eve_gateway', 'service_role', 'anon', 'authenticated']) r(role)
      where has_function_privilege(r.role, f.fn, 'execute')
      order by 1, 2`;
    expect(rights.map((x) => `${x.fn.replace(/\(.*/, "")} ${x.role}`)).toEqual([
      "public.google_ai_answer_quota eve_gateway",
      "public.google_ai_answer_quota service_role",
      "public.google_ai_quota_report eve_gateway",
      "public.google_ai_quota_report service_role",
    ]);
    // Every function of the file pins its search_path (the security definer ones above all), but the
    // ones the planner inlines (as google_ai_quota_group, google_ai_ms_until, google_ai_budget_left),
    // whose bodies name everything by schema.
    const loose = await db.sql<{ fn: string }[]>`
      select p.oid::regprocedure::text as fn from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname = 'public'
        and p.proname in ('google_ai_group_quota', 'google_ai_answer_quota_at',
                          'google_ai_answer_quota', 'google_ai_model_quota', 'google_ai_quota_report_at', 'google_ai_quota_report')
        and not coalesce(p.proconfig @> array['search_path=""'], false)`;
    expect(loose).toEqual([]);
  });
});
