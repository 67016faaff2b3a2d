// Providers are data: a model row names its provider, a key row names its own (the owner's spelling,
// read through google_ai_provider), and a key serves only its provider's models. A Google request
// never books another provider's key, whatever its priority; an OpenAI model row is served by OpenAI
// keys only; and the adoption migration stops on a provider spelling it does not know, naming the rows.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { applyMigrations, type Sql } from "../../shared/db/migrate.ts";
import { createProductionTables } from "../support/production-tables.ts";
import { emptySupabaseDatabase } from "../support/empty-database.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";
import {
  BUILT_IN_PROVIDERS,
  DIALECTS,
  type ProviderRow,
} from "../../supabase/functions/_shared/providers/registry.ts";
import { reservation } from "../support/reserve-answer.ts";

const GOOGLE_KEY = "0a000000-0000-4000-8000-000000000001";
const OPENAI_KEY = "0a000000-0000-4000-8000-000000000002";

let db: TestDatabase;

/** Thrown to roll a transaction back. */
class Rollback extends Error {}

beforeAll(async () => {
  db = await freshDatabase("providers");
  await db.sql`update public.google_ai_model_limits set spread_burst = null`;
  await db.sql`delete from public.google_ai_api_keys`;
  // The owner's table as the issue measured it: an OpenAI key at the best priority beside the Google key.
  await db.sql`insert into public.google_ai_api_keys (id, key_alias, provider, env_var_name, priority, project_id)
               values (${GOOGLE_KEY}, 'google-main', 'google', 'GOOGLE_API_KEY', 10, 'proj-g'),
                      (${OPENAI_KEY}, 'openai-main', 'openai', 'OPENAI_API_KEY', 1, 'org-o')`;
}, 60_000);

afterAll(async () => {
  await db?.drop();
});

type Booking = { ok: boolean; key_id?: string; key_alias?: string; reservation_id?: string; model?: string };

async function reserve(model: string, requestId: string, exclude: string[] = []): Promise<Booking> {
  const [{ r }] = await db.sql`select public.google_ai_reserve_models(p_models => array[${model}], p_estimated_tokens => 10,
    p_caller => 'providers', p_request_id => ${requestId}, p_exclude_key_ids => ${exclude}::uuid[]) as r`;
  return r;
}

async function release(reservationId: string, reason: string) {
  await db.sql`select public.google_ai_release(${reservationId}::uuid, ${reason})`;
}

async function attemptsOn(keyId: string): Promise<number> {
  const [{ n }] = await db.sql`select count(*)::int as n from public.google_ai_attempts where api_key_id = ${keyId}::uuid`;
  return n;
}

describe("a key serves only its provider's models", () => {
  it("20 Google requests book no attempt on the OpenAI key at priority 1", async () => {
    for (let i = 0; i < 20; i++) {
      // As llm-invoke does: a key whose secret it may not read is released and the next one asked for.
      let booking = await reserve("gemma-3-27b", `google-${i}`);
      if (booking.ok && booking.key_id === OPENAI_KEY) {
        await release(booking.reservation_id!, "key secret not set");
        booking = await reserve("gemma-3-27b", `google-${i}`, [OPENAI_KEY]);
      }
      expect(booking).toMatchObject({ ok: true, key_id: GOOGLE_KEY, model: "gemma-3-27b-it" });
      await release(booking.reservation_id!, "test");
    }
    expect(await attemptsOn(OPENAI_KEY)).toBe(0);
    expect(await attemptsOn(GOOGLE_KEY)).toBe(20);
  });

  it("an OpenAI model row is served by the OpenAI key, never by Google's", async () => {
    // The seed's row (supabase/seed.sql), OpenAI's.
    const [seeded] = await db.sql`select provider, booked_output_tokens from public.google_ai_model_limits where model = 'gpt-4o'`;
    expect(seeded).toEqual({ provider: "openai", booked_output_tokens: 4096 });
    const booking = await reserve("gpt-4o", "openai-1");
    expect(booking).toMatchObject({ ok: true, key_id: OPENAI_KEY, model: "gpt-4o" });
    await release(booking.reservation_id!, "test");
    const without = await reserve("gpt-4o", "openai-2", [OPENAI_KEY]);
    expect(without.ok).toBe(false);
  });

  it("reads the owner's spellings of a provider (the provider rows say which names exist)", async () => {
    const rows = await db.sql<{ spelling: string | null; provider: string | null }[]>`
      select s as spelling, public.google_ai_provider(s) as provider
      from unnest(array['google', 'Google', ' GOOGLE ', 'gemini', 'Gemini', 'google_ai', 'Google AI', 'google-ai',
                        'GoogleAI', 'openai', 'OpenAI', 'open_ai', ' Open AI ', 'anthropic', '', 'googl']) s`;
    expect(Object.fromEntries(rows.map((r) => [String(r.spelling), r.provider]))).toEqual({
      "google": "google", "Google": "google", " GOOGLE ": "google", "gemini": "google", "Gemini": "google",
      "google_ai": "google", "Google AI": "google", "google-ai": "google", "GoogleAI": "google",
      "openai": "openai", "OpenAI": "openai", "open_ai": "openai", " Open AI ": "openai",
      "anthropic": "anthropic", "": "", "googl": "googl",
    });
  });

  it("seeds the built-in providers, each of a dialect the functions speak", async () => {
    const rows = await db.sql<ProviderRow[]>`select name, dialect, display_name, base_url, key_env_pattern, day_zone, has_responses_api
                                             from public.google_ai_provider_list()`;
    expect(rows).toEqual(BUILT_IN_PROVIDERS);
    for (const row of rows) expect(DIALECTS, row.name).toContain(row.dialect);
  });

  it("takes each dialect's own row (a dialect needs none seeded: an operator, or a test, inserts it)", async () => {
    for (const dialect of DIALECTS) {
      const taken = await db.sql.begin(async (tx) => {
        await tx`insert into public.google_ai_providers (name, dialect, display_name)
                 values (${dialect}, ${dialect}, 'X') on conflict (name) do nothing`;
        const [row] = await tx`select dialect from public.google_ai_providers where name = ${dialect}`;
        throw new Rollback(row?.dialect);
      }).catch((e) => {
        if (!(e instanceof Rollback)) throw e;
        return e.message;
      });
      expect(taken, dialect).toBe(dialect);
    }
  });

  it("refuses a provider row with a name that is no reading, a base URL that is no http(s) URL, or none", async () => {
    const add = (name: string, baseUrl: string | null, pattern: string | null = "X_[A-Z]+") =>
      db.sql`insert into public.google_ai_providers (name, dialect, display_name, base_url, key_env_pattern)
             values (${name}, 'openai', 'X', ${baseUrl}, ${pattern})`;
    for (const [name, url] of [["Deep Seek", "https://api.deepseek.com"], ["gemini", "https://x.example"],
      ["deepseek", "ftp://api.deepseek.com"], ["deepseek", "https://api.deepseek.com/v1?key=1"], ["deepseek", "api.deepseek.com"],
      ["deepseek", "https://evil.example#@api.deepseek.com"], ["deepseek", null]] as const) {
      await expect(add(name, url), `${name} ${url}`).rejects.toMatchObject({ code: "23514" });
    }
    await expect(add("deepseek", "https://api.deepseek.com", null)).rejects.toMatchObject({ code: "23514" });
  });

  it("takes a provider's day zone by its IANA name, UTC where the row names none, and refuses one Postgres does not know", async () => {
    const add = (zone: string | null) =>
      db.sql.begin(async (tx) => {
        const [row] = zone === null
          ? await tx`insert into public.google_ai_providers (name, dialect, display_name, base_url, key_env_pattern)
                     values ('zoned', 'openai', 'Zoned', 'https://z.example', 'ZONED_[A-Z]+') returning day_zone`
          : await tx`insert into public.google_ai_providers (name, dialect, display_name, base_url, key_env_pattern, day_zone)
                     values ('zoned', 'openai', 'Zoned', 'https://z.example', 'ZONED_[A-Z]+', ${zone}) returning day_zone`;
        throw new Rollback(row!.day_zone);
      }).catch((e) => {
        if (!(e instanceof Rollback)) throw e;
        return e.message;
      });
    expect(await add(null)).toBe("UTC");
    expect(await add("Asia/Shanghai")).toBe("Asia/Shanghai");
    for (const zone of ["Mars/Olympus_Mons", "", "UTC; drop table x"]) {
      await expect(add(zone), zone).rejects.toMatchObject({ code: expect.stringMatching(/^(23514|22023)$/) });
    }
  });

  it("serves a key by its owner's spelling, and refuses a new key of an unknown provider", async () => {
    await db.sql`update public.google_ai_api_keys set provider = ' Gemini ' where id = ${GOOGLE_KEY}::uuid`;
    const booking = await reserve("gemma-3-27b", "spelled-1");
    expect(booking).toMatchObject({ ok: true, key_id: GOOGLE_KEY });
    await release(booking.reservation_id!, "test");
    await expect(db.sql`insert into public.google_ai_api_keys (key_alias, provider, env_var_name)
                        values ('other', 'mistral', 'MISTRAL_API_KEY')`).rejects.toMatchObject({ code: "23503" });
    await expect(db.sql`update public.google_ai_model_limits set provider = 'OpenAI' where model = 'gpt-4o'`)
      .rejects.toMatchObject({ code: "23503" });
  });
});

describe("each provider's catalogue, life cycle and key health keep to its own rows", () => {
  it("checks only Google's keys, and concludes nothing about another provider's models", async () => {
    const keys = await db.sql`select key_alias from public.google_ai_active_keys('google')`;
    expect(keys.map((k) => k.key_alias)).toEqual(["google-main"]);
    // Google's key checked and listing only Gemma: gpt-4o is no Google model, so not missing, not
    // unlisted, not passed over as retired in a chain.
    const [{ r }] = await db.sql`select public.google_ai_record_key_check(${GOOGLE_KEY}::uuid, 'ok', 200, null, null,
      ${db.sql.json([{ model: "gemma-3-27b-it" }])}::jsonb) as r`;
    expect(r).toMatchObject({ ok: true, models: 1 });
    await db.sql`update public.google_ai_model_limits set withdrawn_at = now() - interval '1 hour' where model = 'gpt-4o'`;
    const [{ review }] = await db.sql`select public.google_ai_model_lifecycle_review() as review`;
    expect(review.checked).toBe(true);
    expect(review.missing).not.toContain("gpt-4o");
    expect(review.missing).toContain("gemini-2.5-flash");
    expect(review.restored).toEqual([]);
    // Google's lists say nothing of gpt-4o: its status waits for a check of an OpenAI key.
    const [status] = await db.sql`select catalogue_status, keys_checked from public.google_ai_model_catalogue_status
                                  where model = 'gpt-4o'`;
    expect(status).toEqual({ catalogue_status: "unknown", keys_checked: 0 });
    await db.sql`update public.google_ai_model_limits set withdrawn_at = null where model = 'gpt-4o'`;
    const [chain] = await db.sql`select o_retired as retired from public.google_ai_fallback_chain(array['gpt-4o', 'gemini-2.5-flash'], null, null)`;
    expect(chain!.retired).toEqual([false, true]);
    const [{ n }] = await db.sql`select count(*)::int as n from public.google_ai_key_health where api_key_id = ${OPENAI_KEY}::uuid`;
    expect(n).toBe(0);
  });

  it("pairs each quota group with its provider's models in the operator views", async () => {
    const usage = await db.sql`select quota_group, model from public.google_ai_usage_now where model in ('gpt-4o', 'gemma-3-27b-it')
                               order by quota_group, model`;
    expect(usage.map((r) => `${r.quota_group} ${r.model}`)).toEqual(["org-o gpt-4o", "proj-g gemma-3-27b-it"]);
    const shares = await db.sql`select quota_group, model from public.google_ai_shares_today
                                where owner = 'interactive' and model in ('gpt-4o', 'gemma-3-27b-it') order by quota_group, model`;
    expect(shares.map((r) => `${r.quota_group} ${r.model}`)).toEqual(["org-o gpt-4o", "proj-g gemma-3-27b-it"]);
  });

  it("counts keys per provider in the metrics", async () => {
    const rows = await db.sql`select labels, value::int as value from public.google_ai_metric_gauges(now(), 0)
                              where family = 'eve_gateway_keys' order by labels`;
    expect(rows.map((x) => x.labels)).toEqual([
      'provider="google",quota_group="proj-g",health="ok",active="true"',
      'provider="openai",quota_group="org-o",health="unchecked",active="true"',
    ]);
  });

  it("passes over a model its own provider's checked keys leave unlisted, OpenAI's as Google's", async () => {
    const chain = async () =>
      (await db.sql`select o_retired as retired from public.google_ai_fallback_chain(array['gpt-4o', 'gemma-3-27b'], null, null)`)[0]!.retired;
    const checkOpenAi = (models: string[]) =>
      db.sql`select public.google_ai_record_key_check(${OPENAI_KEY}::uuid, 'ok', 200, null, null,
        ${db.sql.json(models.map((model) => ({ model })))}::jsonb)`;
    try {
      // Google's key lists Gemma (the test above); OpenAI's key, checked, lists another model only.
      await checkOpenAi(["gpt-4o-mini"]);
      expect(await chain()).toEqual([true, false]);
      const [status] = await db.sql`select catalogue_status from public.google_ai_model_catalogue_status where model = 'gpt-4o'`;
      expect(status!.catalogue_status).toBe("unlisted");
      // Listed again: asked again.
      await checkOpenAi(["gpt-4o-mini", "gpt-4o"]);
      expect(await chain()).toEqual([false, false]);
    } finally {
      await db.sql`delete from public.google_ai_model_catalogue where api_key_id = ${OPENAI_KEY}::uuid`;
      await db.sql`delete from public.google_ai_key_health where api_key_id = ${OPENAI_KEY}::uuid`;
    }
  });
});

describe("the adoption migration and the owner's provider values", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanups.length) await cleanups.pop()!();
  });

  async function ownerProject(label: string): Promise<Sql> {
    const sql = await emptySupabaseDatabase(label, cleanups, { max: 2 });
    await createProductionTables(sql);
    return sql;
  }

  it("keeps known spellings as written and changes or disables nothing", async () => {
    const sql = await ownerProject("providers_known");
    await sql`insert into public.google_ai_api_keys (id, key_alias, provider, env_var_name, is_active, priority) values
      ('33333333-3333-3333-3333-333333333333', 'gemini-spelled', 'Gemini', 'GOOGLE_API_KEY_3', true, 3),
      ('44444444-4444-4444-4444-444444444444', 'bot-openai', 'OpenAI', 'OPENAI_API_KEY', true, 1),
      ('55555555-5555-5555-5555-555555555555', 'no-provider', null, 'GOOGLE_API_KEY_5', true, 5)`;
    const before = await sql`select id, key_alias, provider, env_var_name, is_active, priority from public.google_ai_api_keys order by id`;
    await applyMigrations(sql);
    const after = await sql`select id, key_alias, provider, env_var_name, is_active, priority from public.google_ai_api_keys order by id`;
    expect(after).toEqual(before);
    // The owner's two model rows stay Google's (the built-in models arrive beside them: migrations.test.ts).
    const models = await sql`select model, provider from public.google_ai_model_limits
                             where model in ('gemini-2.5-flash', 'gemma-3-27b-it') order by model`;
    expect(models).toEqual([{ model: "gemini-2.5-flash", provider: "google" }, { model: "gemma-3-27b-it", provider: "google" }]);
    // The owner's Google requests are served by the Google key, never the OpenAI one at priority 1.
    const [{ r }] = await sql`select public.google_ai_reserve_models(array['gemma-3-27b-it'], 10, 'test', null, 'adopt-p') as r`;
    expect(r).toMatchObject({ ok: true, key_alias: "main" });
  });

  it("stops on a spelling it does not know, naming the rows, and changes nothing", async () => {
    const sql = await ownerProject("providers_unknown");
    await sql`insert into public.google_ai_api_keys (id, key_alias, provider, env_var_name, is_active, priority) values
      ('66666666-6666-6666-6666-666666666666', 'claude', 'anthropic', 'ANTHROPIC_API_KEY', true, 4),
      ('77777777-7777-7777-7777-777777777777', 'typo', 'gogle', 'GOOGLE_API_KEY_7', true, 7)`;
    const before = await sql`select to_jsonb(k) as row from public.google_ai_api_keys k order by id`;
    const error = await applyMigrations(sql).then(() => null, (e: Error) => e);
    expect(error?.message).toMatch(/provider/);
    expect(error?.message).toContain("66666666-6666-6666-6666-666666666666 (anthropic)");
    expect(error?.message).toContain("77777777-7777-7777-7777-777777777777 (gogle)");
    expect(error?.message).not.toContain("11111111-1111-1111-1111-111111111111");
    const after = await sql`select to_jsonb(k) as row from public.google_ai_api_keys k order by id`;
    expect(after).toEqual(before);
  });
});

describe("a provider's day is its row's day_zone", () => {
  // 07:30 UTC on 28 November: still the 27th in Pacific time, already the 28th in UTC.
  const AT = "2026-11-28T07:30:00Z";

  it("spend per day and yesterday's spend follow the row's zone, not its name or dialect", async () => {
    await db.sql.begin(async (tx) => {
      // A provider added by rows whose day is UTC's and which is not OpenAI, and one whose day is Pacific.
      await tx`insert into public.google_ai_providers (name, dialect, display_name, base_url, key_env_pattern, day_zone)
               values ('kiwiai', 'openai', 'Kiwi AI', 'https://kiwi.example', 'KIWI_[A-Z]+', 'UTC'),
                      ('westai', 'openai', 'West AI', 'https://west.example', 'WEST_[A-Z]+', 'America/Los_Angeles')`;
      await tx`insert into public.google_ai_model_limits (model, provider, rpm) values ('kiwi-1', 'kiwiai', 60),
                                                                                       ('west-1', 'westai', 60)`;
      await tx`insert into public.google_ai_attempts (status, caller, model, admitted_at, cost_usd)
               values ('succeeded', 'zone-test', 'kiwi-1', ${AT}, 0.5), ('succeeded', 'zone-test', 'west-1', ${AT}, 0.25)`;
      const days = await tx`select provider, day::text from public.google_ai_spend_daily where caller = 'zone-test'
                            order by provider`;
      expect(days).toEqual([{ provider: "kiwiai", day: "2026-11-28" }, { provider: "westai", day: "2026-11-27" }]);
      // Yesterday, each in its own zone: at 09:00 UTC on the 28th it is 01:00 on the 28th in Pacific
      // time, so west's yesterday is the 27th (its day) and kiwi's the 27th (not its day); a day later, kiwi's.
      const yesterday = async (at: string) => {
        const [{ y }] = await tx`select public.google_ai_spend_yesterday(${at}::timestamptz) as y`;
        return (y as Array<{ provider: string; day: string; spend_usd: number }>)
          .filter((d) => d.provider === "kiwiai" || d.provider === "westai");
      };
      expect(await yesterday("2026-11-28T09:00:00Z")).toEqual([
        { provider: "westai", day: "2026-11-27", spend_usd: 0.25, calls: 1, calls_unpriced: 0 },
      ]);
      expect(await yesterday("2026-11-29T09:00:00Z")).toEqual([
        { provider: "kiwiai", day: "2026-11-28", spend_usd: 0.5, calls: 1, calls_unpriced: 0 },
      ]);
      throw new Rollback();
    }).catch((e) => {
      if (!(e instanceof Rollback)) throw e;
    });
  });

  it("a group's requests per day turn at midnight in its provider's zone: a UTC-day row's at UTC's, Google's at Pacific's", async () => {
    // Noon on 27 November in Pacific time (PST, UTC-8): both days are the 27th; UTC's ends 8 hours before Pacific's.
    const NOON = "2026-11-27T20:00:00Z";
    const AFTER_UTC_MIDNIGHT = "2026-11-28T00:00:06Z"; // past UTC midnight and its 5 s day guard; still the 27th in Pacific
    await db.sql.begin(async (tx) => {
      // A provider added by rows whose day is UTC's and which is not OpenAI, beside a Google model.
      await tx`insert into public.google_ai_providers (name, dialect, display_name, base_url, key_env_pattern, day_zone)
               values ('kiwiai', 'openai', 'Kiwi AI', 'https://kiwi.example', 'KIWI_[A-Z]+', 'UTC')`;
      await tx`insert into public.google_ai_api_keys (key_alias, provider, env_var_name, priority, project_id)
               values ('kiwi-key', 'kiwiai', 'KIWI_KEY', 1, 'org-kiwi')`;
      await tx`insert into public.google_ai_model_limits (model, provider, rpm, rpd) values ('kiwi-day', 'kiwiai', 60, 2),
                                                                                            ('pacific-day', 'google', 60, 2)`;
      await tx`delete from public.google_ai_quota_shares where model in ('kiwi-day', 'pacific-day')`;
      type Answer = { ok: boolean; limit?: string; retry_at?: string; quota_group?: string };
      const reserveAt = async (model: string, at: string): Promise<Answer> => {
        const [{ r }] = await tx`select public.google_ai_reserve_models_at(${at}::timestamptz, jsonb_populate_record(
          null::public.google_ai_reservation, ${reservation({ models: [model], estimated_tokens: 10,
            caller: "zone-day" })}::text::jsonb)) as r`;
        return r as Answer;
      };
      for (const model of ["kiwi-day", "pacific-day"]) {
        for (let i = 0; i < 2; i++) expect(await reserveAt(model, NOON), `${model} ${i}`).toMatchObject({ ok: true });
      }
      // The day used up: each reopens at its own provider's midnight plus the day guard.
      expect(await reserveAt("kiwi-day", NOON)).toMatchObject({ ok: false, limit: "rpd", retry_at: "2026-11-28T00:00:05+00:00" });
      expect(await reserveAt("pacific-day", NOON))
        .toMatchObject({ ok: false, limit: "rpd", retry_at: "2026-11-28T08:00:05+00:00" });
      // The quota report says the same of each model's day.
      const [{ kiwi, pacific }] = await tx`select public.google_ai_model_quota('kiwi-day', ${NOON}::timestamptz) -> 'day' as kiwi,
        public.google_ai_model_quota('pacific-day', ${NOON}::timestamptz) -> 'day' as pacific`;
      expect(kiwi).toMatchObject({ requests_left: 0, resets_at: "2026-11-28T00:00:05+00:00" });
      expect(pacific).toMatchObject({ requests_left: 0, resets_at: "2026-11-28T08:00:05+00:00" });
      // Past UTC midnight: the UTC-day provider's group has a new day, Google's still the old one.
      expect(await reserveAt("kiwi-day", AFTER_UTC_MIDNIGHT)).toMatchObject({ ok: true, quota_group: "org-kiwi" });
      expect(await reserveAt("pacific-day", AFTER_UTC_MIDNIGHT))
        .toMatchObject({ ok: false, limit: "rpd", retry_at: "2026-11-28T08:00:05+00:00" });
      const days = await tx`select model, day_bucket::text as day, rpd_used from public.google_ai_usage_counters
                            where model in ('kiwi-day', 'pacific-day') order by model`;
      expect(days).toEqual([{ model: "kiwi-day", day: "2026-11-28", rpd_used: 1 },
                            { model: "pacific-day", day: "2026-11-27", rpd_used: 2 }]);
      throw new Rollback();
    }).catch((e) => {
      if (!(e instanceof Rollback)) throw e;
    });
  });

  it("a service caller's budget keeps the owner's Pacific day on a UTC-day provider: the end of a call settles it there", async () => {
    // 03:00 UTC on 28 November: the provider's (UTC) day is the 28th, the owner's Pacific day the 27th.
    const EVENING = "2026-11-28T03:00:00Z";
    await db.sql.begin(async (tx) => {
      await tx`insert into public.google_ai_providers (name, dialect, display_name, base_url, key_env_pattern, day_zone)
               values ('kiwiai', 'openai', 'Kiwi AI', 'https://kiwi.example', 'KIWI_[A-Z]+', 'UTC')`;
      await tx`insert into public.google_ai_api_keys (key_alias, provider, env_var_name, priority, project_id)
               values ('kiwi-key', 'kiwiai', 'KIWI_KEY', 1, 'org-kiwi')`;
      await tx`insert into public.google_ai_model_limits (model, provider, rpm, tpm) values ('kiwi-budget', 'kiwiai', 60, 100000)`;
      await tx`delete from public.google_ai_quota_shares where model = 'kiwi-budget'`;
      await tx`insert into public.google_ai_caller_budgets (caller, daily_max_tokens) values ('zone-budget', 10000)`;
      const [{ r }] = await tx`select public.google_ai_reserve_models_at(${EVENING}::timestamptz, jsonb_populate_record(
        null::public.google_ai_reservation, ${reservation({ models: ["kiwi-budget"], estimated_tokens: 500,
          caller: "zone-budget" })}::text::jsonb)) as r`;
      expect(r).toMatchObject({ ok: true, quota_group: "org-kiwi" });
      const booked = await tx`select day_bucket::text as day, tokens_today::int as tokens from public.google_ai_caller_budgets
                              where caller = 'zone-budget'`;
      expect(booked).toEqual([{ day: "2026-11-27", tokens: 500 }]);
      // The call counted its 100 input tokens (the row's TPM counts no answers): the caller's Pacific day
      // gets back the 400 it did not use.
      await tx`select public.google_ai_finalize(${r.reservation_id}::uuid,
        '{"kind": "succeeded", "input_tokens": 100, "output_tokens": 20, "http_status": 200}'::jsonb)`;
      const settled = await tx`select day_bucket::text as day, tokens_today::int as tokens from public.google_ai_caller_budgets
                               where caller = 'zone-budget'`;
      expect(settled).toEqual([{ day: "2026-11-27", tokens: 100 }]);
      throw new Rollback();
    }).catch((e) => {
      if (!(e instanceof Rollback)) throw e;
    });
  });

  it("a per-day 429 rests the group until the next midnight of the provider's own day", async () => {
    await db.sql`insert into public.google_ai_providers (name, dialect, display_name, base_url, key_env_pattern, day_zone)
                 values ('kiwiai', 'openai', 'Kiwi AI', 'https://kiwi.example', 'KIWI_[A-Z]+', 'UTC')`;
    try {
      await db.sql`insert into public.google_ai_api_keys (key_alias, provider, env_var_name, priority, project_id)
                   values ('kiwi-key', 'kiwiai', 'KIWI_KEY', 1, 'org-kiwi')`;
      await db.sql`insert into public.google_ai_model_limits (model, provider, rpm, rpd) values ('kiwi-1', 'kiwiai', 60, 100)`;
      const booking = await reserve("kiwi-1", "kiwi-day");
      expect(booking.ok).toBe(true);
      const [{ r, midnight }] = await db.sql`
        select public.google_ai_finalize(${booking.reservation_id!}::uuid, '{"kind": "upstream_error",
                 "http_status": 429, "quota_cause": "day", "cooldown_until_provider_midnight": true}'::jsonb) as r,
               ((((now() at time zone 'UTC')::date + 1)::timestamp) at time zone 'UTC') as midnight`;
      expect(new Date(r.cooldown_until).getTime()).toBe((midnight as Date).getTime());
    } finally {
      await db.sql`delete from public.google_ai_cooldowns where model = 'kiwi-1'`;
      await db.sql`delete from public.google_ai_attempts where model = 'kiwi-1'`;
      await db.sql`delete from public.google_ai_usage_counters where model = 'kiwi-1'`;
      await db.sql`delete from public.google_ai_model_limits where model = 'kiwi-1'`;
      await db.sql`delete from public.google_ai_api_keys where key_alias = 'kiwi-key'`;
      await db.sql`delete from public.google_ai_providers where name = 'kiwiai'`;
    }
  });
});
