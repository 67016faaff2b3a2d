// pg-store against a real PostgreSQL (a fresh database with the migrations and seed): each
// GatewayStore call maps to its RPC, the answers parse into the interface's shapes, metadata that
// jsonb would reject is cleaned, and a dead or missing database becomes a 503, never a throw of
// the driver's error.
import { createHash, randomBytes } from "node:crypto";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { freshDatabase, type TestDatabase } from "../../../../tests/support/test-database.ts";
import { gatewayRoleUrl } from "../../../../shared/db/gateway-role.ts";
import { createDatabase, type Database, dbConfigFromEnv, poolOptions } from "../../_shared/db.ts";
import { GatewayError } from "../../_shared/errors.ts";
import postgres from "postgres";
import { createPgStore, jsonbText, parseQuotaReport, parseQuotaSnapshot, parseReserveResult } from "./pg-store.ts";
import type { FinalizeParams, Refusal, Reservation, ReserveParams } from "../contract.ts";

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

let db: TestDatabase;
let database: Database;
/** The functions' own role's URL (the store connects as eve_gateway). */
let gatewayUrl: string;
const logged: string[] = [];

function params(extra: Partial<ReserveParams> = {}): ReserveParams {
  return {
    model: "gemma-3-27b",
    fallbackModels: [],
    estimatedTokens: 40,
    outputTokens: [],
    caller: { kind: "service", name: "pg-store-test" },
    requestId: "req-1",
    idempotent: false,
    excludeKeyIds: [],
    attempt: 1,
    waitMs: 0,
    metadata: {},
    priority: null,
    queueTicket: null,
    waitLeftMs: 0,
    claim: { id: crypto.randomUUID(), invocationEnd: Date.now() + 60_000 },
    ...extra,
  };
}

beforeAll(async () => {
  db = await freshDatabase("pg_store");
  // The store is tested here, not the window's spread: its reservations go at once.
  await db.sql`update public.google_ai_model_limits set spread_burst = null`;
  await db.sql`update public.google_ai_api_keys set project_id = 'proj-default' where key_alias = 'default'`;
  await db.sql`insert into public.google_ai_api_keys (key_alias, env_var_name, project_id, priority)
               values ('second', 'SECOND_KEY', 'proj-second', 200)`;
  // The store connects as the functions' own role: a missing grant fails here.
  const asGateway = await gatewayRoleUrl(db.url);
  gatewayUrl = asGateway;
  database = createDatabase({
    config: dbConfigFromEnv((n) => (n === "SUPABASE_DB_URL" ? asGateway : undefined)),
    applicationName: "pg-store-test",
  });
});

afterAll(async () => {
  await database?.close();
  await db?.drop();
});

describe("dbConfigFromEnv", () => {
  it("prefers GATEWAY_DB_URL and turns prepared statements off for it", () => {
    const env: Record<string, string> = {
      SUPABASE_DB_URL: "postgres://u:p@db:5432/postgres",
      GATEWAY_DB_URL: "postgres://u:p@pooler:5432/postgres",
    };
    expect(dbConfigFromEnv((n) => env[n])).toMatchObject({ source: "GATEWAY_DB_URL", prepare: false, max: 5 });
  });

  it("keeps prepared statements on a direct URL, off on the pooler port 6543", () => {
    expect(dbConfigFromEnv((n) => (n === "SUPABASE_DB_URL" ? "postgres://u:p@db:5432/x" : undefined)))
      .toMatchObject({ source: "SUPABASE_DB_URL", prepare: true });
    expect(dbConfigFromEnv((n) => (n === "SUPABASE_DB_URL" ? "postgres://u:p@db:6543/x" : undefined)))
      .toMatchObject({ prepare: false });
  });

  it("is null without a URL and bounds the pool size", () => {
    expect(dbConfigFromEnv(() => undefined)).toBeNull();
    expect(dbConfigFromEnv(() => " ")).toBeNull();
    const env: Record<string, string> = { SUPABASE_DB_URL: "postgres://db/x", GATEWAY_DB_POOL_MAX: "1000" };
    expect(dbConfigFromEnv((n) => env[n])!.max).toBe(5);
    env.GATEWAY_DB_POOL_MAX = "12";
    expect(dbConfigFromEnv((n) => env[n])!.max).toBe(12);
  });
});

describe("jsonbText", () => {
  it("drops NUL and replaces lone surrogates, in keys and values, so jsonb accepts it", async () => {
    const nasty = { "a\u0000b": ["x\u0000y", "\ud800", "ok \ud83d\ude00", { "\udc00": 1 }], __proto__x: null };
    const [{ v }] = await db.sql`select ${jsonbText(nasty)}::text::jsonb as v`;
    expect(v).toEqual({ ab: ["xy", "\ufffd", "ok \ud83d\ude00", { "\ufffd": 1 }], __proto__x: null });
  });

  it("sends a value that needs no cleaning as JSON.stringify writes it, text that only looks like an escape included", async () => {
    const plain = { text: "ok \ud83d\ude00 \u0001", written: "\\u0000 and \\ud800 as text", n: [1, 2.5, true, null] };
    expect(jsonbText(plain)).toBe(JSON.stringify(plain));
    const [{ v }] = await db.sql`select ${jsonbText(plain)}::text::jsonb as v`;
    expect(v).toEqual(plain);
  });

  it("keeps a __proto__ key as data", () => {
    const parsed = JSON.parse('{"__proto__": {"polluted": "\\u0000yes"}}') as Record<string, unknown>;
    expect(jsonbText(parsed)).toBe('{"__proto__":{"polluted":"yes"}}');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe("parseReserveResult", () => {
  it("refuses shapes it does not know (a 503 later, not a crash)", () => {
    expect(() => parseReserveResult(null)).toThrow();
    expect(() => parseReserveResult({ ok: true, key_alias: "x" })).toThrow(/reservation_id/);
    expect(() => parseReserveResult({ ok: false, limit: "nonsense" })).toThrow(/not in REFUSAL_LIMITS/);
  });
});

describe("parseQuotaSnapshot and parseQuotaReport", () => {
  it("takes a quota it cannot read for none (seeing the quota never fails a request)", () => {
    expect(parseQuotaSnapshot(null)).toBeNull();
    expect(parseQuotaSnapshot({ rpm: 5 })).toBeNull();
    expect(parseQuotaSnapshot("{not json")).toBeNull();
    expect(parseQuotaSnapshot({ model: "m", quota_group: "g", rpm: 5, requests_left: -1, requests_reset_ms: "soon" }))
      .toMatchObject({ rpm: 5, requestsLeft: 0, requestsResetMs: null, tpm: null });
    // What the shares keep: read when it is an object, its unreadable figures null; else none.
    expect(parseQuotaSnapshot({ model: "m", quota_group: "g", kept: { rpm_for_others: 6, rpm_for_you: "x", rpd_for_others: 2 } })!.kept)
      .toEqual({ rpmForOthers: 6, rpmForYou: null, rpdForOthers: 2, rpdForYou: null });
    expect(parseQuotaSnapshot({ model: "m", quota_group: "g", kept: "6" })!.kept).toBeNull();
    expect(parseQuotaSnapshot({ model: "m", quota_group: "g" })!.kept).toBeNull();
  });

  it("passes the report on without its ok, and knows a token's refusal; anything else is an error", () => {
    expect(parseQuotaReport({ ok: true, models: [] })).toEqual({ ok: true, report: { models: [] } });
    expect(parseQuotaReport({ ok: false, status: "token_revoked" })).toEqual({ ok: false, status: "token_revoked" });
    expect(() => parseQuotaReport({ ok: false, status: "bogus" })).toThrow();
    expect(() => parseQuotaReport(null)).toThrow();
  });
});

describe("createPgStore over the RPCs", () => {
  const store = () => createPgStore({ database, logError: (m) => logged.push(m) });

  it("resolves model profiles by id and alias, with the row's chain by canonical name; unknown is null", async () => {
    expect(await store().modelProfile("gemma-3-27b")).toEqual({
      model: "gemma-3-27b-it",
      active: true,
      supportsSystemInstruction: false,
      supportsJsonMode: false,
      supportsTools: false,
      supportsImages: null, // the seed does not know whether Gemma 3 took images
      fallbackModels: [],
      provider: "google",
      dialect: "google",
    });
    // Gemma 4's row takes a system instruction and tools; Gemini's say they take images.
    expect(await store().modelProfile("gemma-4-31b-it")).toMatchObject({ supportsSystemInstruction: true, supportsTools: true });
    expect(await store().modelProfile("gemini-3.5-flash")).toMatchObject({ supportsImages: true });
    // Claude 5.5's row refuses a thinking budget and non-default sampling; a 4.5 row says nothing of either.
    expect(await store().modelProfile("claude-sonnet-5-5")).toMatchObject({ refusesThinkingBudget: true, refusesSampling: true });
    const older = await store().modelProfile("claude-sonnet-4-5");
    expect(older).not.toHaveProperty("refusesThinkingBudget");
    expect(older).not.toHaveProperty("refusesSampling");
    // A retired row still answers (inactive), with its chain in order: aliases resolved, unknown names left out.
    await db.sql`insert into public.google_ai_model_limits (model, rpm, is_active, fallback_models)
                 values ('retired-model', 1, false, array['no-such-model', 'gemini-2.5-flash', 'gemma-3-27b'])`;
    expect(await store().modelProfile("retired-model")).toMatchObject({
      active: false,
      fallbackModels: ["gemini-2.5-flash", "gemma-3-27b-it"],
    });
    await db.sql`delete from public.google_ai_model_limits where model = 'retired-model'`;
    expect(await store().modelProfile("gemini-2.5-flash")).toMatchObject({
      supportsSystemInstruction: true,
      active: true,
    });
    expect(await store().modelProfile("no-such-model")).toBeNull();
  });

  it("lists the active models with their aliases as arrays (a model without any has an empty one)", async () => {
    const [{ aliases }] = await db
      .sql`select aliases from public.google_ai_model_limits where model = 'gemini-2.5-flash'`;
    await db.sql`update public.google_ai_model_limits set aliases = array['flash-a', 'flash "b", c']
                 where model = 'gemini-2.5-flash'`;
    try {
      const models = await store().modelList();
      expect(models.find((m) => m.model === "gemini-2.5-flash")!.aliases).toEqual(["flash-a", 'flash "b", c']);
      expect(models.find((m) => m.model === "gemini-2.5-flash-lite")!.aliases).toEqual([]);
      expect(models.find((m) => m.model === "gemma-3-27b-it")!.aliases).toContain("gemma-3-27b");
    } finally {
      await db.sql`update public.google_ai_model_limits set aliases = ${aliases} where model = 'gemini-2.5-flash'`;
    }
  });

  it("lists the active keys in rotation order, without their secrets", async () => {
    const keys = await store().activeKeys("google");
    expect(keys.map((k) => [k.keyAlias, k.envVarName, k.quotaGroup])).toEqual([
      ["default", expect.any(String), "proj-default"],
      ["second", "SECOND_KEY", "proj-second"],
    ]);
    expect(keys[0]!.keyId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("takes a key out of rotation when the function says Google refused it, whatever the reason's name", async () => {
    const s = store();
    const refusedWith = async (errorCode: string, keyRejected: boolean) => {
      await db.sql`update public.google_ai_api_keys set is_active = true, disabled_reason = null`;
      const r = (await s.reserve(params({ requestId: `kr-${errorCode}-${keyRejected}` }))) as Reservation;
      await s.finalize({
        reservationId: r.reservationId,
        outcome: "upstream_error",
        inputTokens: null,
        outputTokens: null,
        httpStatus: 400,
        errorCode,
        quotaId: null,
        errorMessage: "no",
        latencyMs: 1,
        cooldownUntil: null,
        cooldownUntilProviderMidnight: false,
        response: null,
        keyRejected,
      });
      const [k] = await db
        .sql`select is_active, disabled_reason from public.google_ai_api_keys where key_alias = ${r.keyAlias}`;
      return k;
    };
    expect(await refusedWith("API_KEY_EXPIRED", true)).toEqual({
      is_active: false,
      disabled_reason: "Google rejected the key (API_KEY_EXPIRED) on a call",
    });
    // The verdict is the function's: a code alone decides nothing when it says the key is fine.
    expect(await refusedWith("API_KEY_INVALID", false)).toMatchObject({ is_active: true });
    await db.sql`update public.google_ai_api_keys set is_active = true, disabled_reason = null`;
  });

  it("reserves, finalizes (with a cooldown and token_usage) and releases", async () => {
    const s = store();
    const claim = { id: crypto.randomUUID(), invocationEnd: Date.now() + 60_000 };
    const r = await s.reserve(params({ metadata: { chat: 1, bad: "\u0000" }, requestId: "rt-1", claim }));
    expect(r).toMatchObject({ ok: true, keyAlias: "default", envVarName: "GOOGLE_API_KEY", model: "gemma-3-27b-it" });
    const res = r as Reservation;
    const until = new Date(Date.now() + 30_000);
    await s.finalize({
      reservationId: res.reservationId,
      outcome: "succeeded",
      inputTokens: 12,
      outputTokens: 3,
      httpStatus: 200,
      errorCode: null,
      quotaId: null,
      errorMessage: null,
      latencyMs: 42,
      cooldownUntil: until,
      cooldownUntilProviderMidnight: false,
      response: null,
    });
    const [att] = await db.sql`select status, input_tokens, output_tokens, latency_ms, metadata,
                                      reply_by is not null as has_reply_by, hold_until is not null as has_hold,
                                      holder::text
                               from public.google_ai_attempts where reservation_id = ${res.reservationId}`;
    // The holder's times (holder.ts) land in their columns, not in the caller's metadata.
    expect(att).toEqual({
      status: "succeeded",
      input_tokens: 12,
      output_tokens: 3,
      latency_ms: 42,
      metadata: { chat: 1, bad: "" },
      has_reply_by: true,
      has_hold: true,
      holder: claim.id, // the invocation's id: the claim's holder
    });
    const [usage] = await db
      .sql`select prompt_tokens, completion_tokens from public.token_usage where request_id = 'rt-1'`;
    expect(usage).toEqual({ prompt_tokens: 12, completion_tokens: 3 });
    const [cd] = await db.sql`select cooldown_until from public.google_ai_cooldowns where quota_group = 'proj-default'`;
    expect(Math.abs((cd!.cooldown_until as Date).getTime() - until.getTime())).toBeLessThan(5);

    // The default group cools down: the next reservation lands on the other key; release it.
    const second = await s.reserve(params({ excludeKeyIds: [res.keyId] }));
    expect(second).toMatchObject({ ok: true, keyAlias: "second" });
    await s.release((second as Reservation).reservationId, "secret not set");
    const [rel] = await db.sql`select status, error_message from public.google_ai_attempts
                               where reservation_id = ${(second as Reservation).reservationId}`;
    expect(rel).toEqual({ status: "released", error_message: "secret not set" });
    await db.sql`delete from public.google_ai_cooldowns`;
  });

  it("finalizes a cut stream with the tier asked, the tier served and the request's times", async () => {
    const s = store();
    const r = (await s.reserve(params({ requestId: "cut-1" }))) as Reservation;
    await s.finalize({
      reservationId: r.reservationId,
      outcome: "cut",
      cutBy: "client",
      inputTokens: 20,
      outputTokens: 7,
      httpStatus: 200,
      errorCode: null,
      quotaId: null,
      errorMessage: "the caller went away",
      latencyMs: 300,
      cooldownUntil: null,
      cooldownUntilProviderMidnight: false,
      response: null,
      serviceTier: "flex",
      servedTier: "flex",
      addedMs: 12.4,
      firstByteMs: 250,
    });
    const [att] = await db.sql`select status, error_code, service_tier, served_tier, added_ms, first_byte_ms
                               from public.google_ai_attempts where reservation_id = ${r.reservationId}`;
    expect(att).toEqual({
      status: "cut",
      error_code: "stream_cut_by_client",
      service_tier: "flex",
      served_tier: "flex",
      added_ms: 12,
      first_byte_ms: 250,
    });
  });

  it("rests, for a spend cap, the active models the group's keys serve, not every model row", async () => {
    const s = store();
    await db.sql`update public.google_ai_api_keys set models = array['gemma-3-27b-it', 'gemini-2.5-flash']
                 where key_alias = 'default'`;
    await db.sql`insert into public.google_ai_model_limits (model, rpm, tpm, rpd, is_active)
                 values ('spend-test-inactive', 1, 1, 1, false)`;
    try {
      const r = (await s.reserve(params({ requestId: "spend-1" }))) as Reservation;
      expect(r.quotaGroup).toBe("proj-default");
      await s.finalize({
        reservationId: r.reservationId,
        outcome: "upstream_error",
        inputTokens: null,
        outputTokens: null,
        httpStatus: 429,
        errorCode: "RESOURCE_EXHAUSTED",
        quotaId: null,
        errorMessage: "spend cap",
        latencyMs: 5,
        cooldownUntil: new Date(Date.now() + 600_000),
        cooldownUntilProviderMidnight: false,
        response: null,
        quotaCause: "spend_cap",
      });
      const rows = await db.sql`select model, cause from public.google_ai_cooldowns
                                where quota_group = 'proj-default' order by model`;
      expect(rows).toEqual([
        { model: "gemini-2.5-flash", cause: "spend_cap" },
        { model: "gemma-3-27b-it", cause: "spend_cap" },
      ]);
    } finally {
      await db.sql`update public.google_ai_api_keys set models = null where key_alias = 'default'`;
      await db.sql`delete from public.google_ai_model_limits where model = 'spend-test-inactive'`;
      await db.sql`delete from public.google_ai_cooldowns`;
    }
  });

  it("concurrent spend caps of one group and key checks clearing its limit: 0 rests never deadlock", async () => {
    // Many rows widen the window in which two multi-row statements hold some and want others: with the
    // rows written in hash order and deleted in heap order, this met "deadlock detected" on every run.
    const models = Array.from({ length: 200 }, (_, i) => `dl-${String(199 - i).padStart(3, "0")}`);
    await db.sql`insert into public.google_ai_model_limits (model, rpm, tpm, rpd)
                 select unnest(${models}::text[]), 1, 1, 1`;
    const [key] = await db.sql<{ id: string }[]>`select id from public.google_ai_api_keys where key_alias = 'default'`;
    try {
      for (let round = 0; round < 8; round++) {
        await db.sql`insert into public.google_ai_cooldowns (quota_group, model, cooldown_until, reason, cause)
                     select 'proj-default', l.model, now() + interval '1 minute', 'limit 0', 'limit_zero'
                     from public.google_ai_model_limits l where l.is_active
                     on conflict (quota_group, model) do update set cause = 'limit_zero',
                       cooldown_until = excluded.cooldown_until`;
        await Promise.all([
          ...models.slice(0, 6).map((m, i) =>
            db.sql`select public.google_ai_cooldown_for_cause('proj-default', ${m},
                     now() + make_interval(mins => ${10 + i}), 'spend_cap', 'RESOURCE_EXHAUSTED', null)`
          ),
          ...[0, 1, 2].map(() =>
            db.sql`select public.google_ai_record_key_check(${key!.id}::uuid, 'ok')`
          ),
        ]);
        const causes = await db.sql<{ cause: string }[]>`
          select distinct cause from public.google_ai_cooldowns where quota_group = 'proj-default'`;
        expect(causes).toEqual([{ cause: "spend_cap" }]);
      }
    } finally {
      await db.sql`delete from public.google_ai_cooldowns`;
      await db.sql`delete from public.google_ai_key_health`;
      await db.sql`delete from public.google_ai_model_limits where model = any (${models}::text[])`;
    }
  });

  it("maps refusals, including a per-day cooldown computed by the database", async () => {
    const s = store();
    expect(await s.reserve(params({ model: "nope" }))).toMatchObject({
      ok: false,
      limit: "unknown_model",
      retryAfterMs: null,
    });
    expect(await s.reserve(params({ estimatedTokens: 1_000_000 }))).toMatchObject({
      ok: false,
      limit: "too_large",
      maxTokens: 15000,
    });
    const r = (await s.reserve(params())) as Reservation;
    await s.finalize({
      reservationId: r.reservationId,
      outcome: "upstream_error",
      inputTokens: null,
      outputTokens: null,
      httpStatus: 429,
      errorCode: "RESOURCE_EXHAUSTED",
      quotaId: "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
      errorMessage: "day",
      latencyMs: 5,
      cooldownUntil: null,
      cooldownUntilProviderMidnight: true,
      response: null,
    });
    const [{ ok }] = await db.sql`select cooldown_until = public.google_ai_pacific_midnight_after(now()) as ok
                                  from public.google_ai_cooldowns where quota_group = ${r.quotaGroup}`;
    expect(ok).toBe(true);
    await db.sql`delete from public.google_ai_cooldowns`;
  });

  it("reserves with a token hash and maps the token's refusals", async () => {
    const [{ c }] = await db.sql`select public.google_ai_create_client('pg-store-client', array['gemma-3-27b-it'],
      p_token_max_requests => 1) as c`;
    const token = `evegw_tok_${randomBytes(32).toString("base64url")}`;
    await db.sql`select public.google_ai_mint_token(${sha256(c.secret)}, ${sha256(token)})`;
    const s = store();
    const ok = await s.reserve(params({ caller: { kind: "token", tokenHash: sha256(token) }, model: "gemma-3-27b" }));
    expect(ok).toMatchObject({ ok: true, model: "gemma-3-27b-it" });
    const [row] = await db.sql`select caller, client_id from public.google_ai_attempts
                               where reservation_id = ${(ok as Reservation).reservationId}`;
    expect(row).toEqual({ caller: "client:pg-store-client", client_id: c.client_id });
    expect(await s.reserve(params({ caller: { kind: "token", tokenHash: sha256(token) } }))).toMatchObject({
      ok: false,
      limit: "token_budget",
      retryAfterMs: null,
    });
    expect(await s.reserve(params({ caller: { kind: "token", tokenHash: sha256(token) }, model: "gemini-2.5-flash" })))
      .toMatchObject({
        ok: false,
        limit: "model_not_allowed",
      });
    expect(await s.reserve(params({ caller: { kind: "token", tokenHash: "0".repeat(64) } }))).toMatchObject({
      ok: false,
      limit: "token_invalid",
    });
  });

  it("reads the answer's quota in the reservation's own call: one statement per reservation", async () => {
    // A pool that records every statement it sends (postgres.js calls `debug` once per query).
    const sent: string[] = [];
    const asGateway = await gatewayRoleUrl(db.url);
    const counting = createDatabase({
      config: dbConfigFromEnv((n) => (n === "SUPABASE_DB_URL" ? asGateway : undefined)),
      applicationName: "pg-store-count",
      createPool: (config, name, timeouts) =>
        postgres(config.url, {
          ...poolOptions(config, name, timeouts),
          max: 1,
          debug: (_c, query) => sent.push(query),
        }),
    });
    const [{ rpm }] = await db.sql<
      { rpm: number }[]
    >`select rpm from public.google_ai_model_limits where model = 'gemini-2.5-flash'`;
    try {
      await db.sql`update public.google_ai_model_limits set rpm = 2 where model = 'gemini-2.5-flash'`;
      const s = createPgStore({ database: counting });
      const flash = () => params({ model: "gemini-2.5-flash" });
      // The default key's group first (its priority), then the second key's: each answer reports its
      // own group as of its own booking.
      const booked: Reservation[] = [];
      for (let i = 0; i < 4; i++) booked.push((await s.reserve(flash())) as Reservation);
      expect(booked.map((r) => [r.quotaGroup, r.quota?.quotaGroup, r.quota?.requestsLeft])).toEqual([
        ["proj-default", "proj-default", 1],
        ["proj-default", "proj-default", 0],
        ["proj-second", "proj-second", 1],
        ["proj-second", "proj-second", 0],
      ]);
      expect(booked[0]!.quota).toMatchObject({ model: "gemini-2.5-flash", rpm: 2 });
      const refused = (await s.reserve(flash())) as Refusal;
      expect(refused).toMatchObject({ ok: false, limit: "rpm" });
      expect(refused.quota).toMatchObject({ requestsLeft: 0 });
      // The same reopening, read a moment after the reservation's own clock.
      const early = refused.retryAfterMs! - refused.quota!.requestsResetMs!;
      expect(early).toBeGreaterThanOrEqual(0);
      expect(early).toBeLessThan(1000);
      // Nothing but the reservations: not even a type look-up on the new connection (_shared/db.ts).
      expect(sent).toHaveLength(5);
      // Each one CALL (the booking, the quota read and the flush are the procedure's).
      for (const statement of sent) expect(statement.trim()).toMatch(/^call public\.google_ai_reserve_call\(/);
    } finally {
      await db.sql`update public.google_ai_model_limits set rpm = ${rpm} where model = 'gemini-2.5-flash'`;
      await counting.close();
    }
  });

  it("answers the quota route: a service caller's report, a token's refusal", async () => {
    const report = await store().quotaReport({ kind: "service", name: "ops" });
    if (!report.ok) throw new Error("a service caller always gets a report");
    const models = (report.report.models as { model: string }[]).map((m) => m.model);
    expect(models).toContain("gemma-3-27b-it");
    expect(await store().quotaReport({ kind: "token", tokenHash: "0".repeat(64) })).toEqual({
      ok: false,
      status: "token_invalid",
    });
  });

  it("reserves a chain of models in one call, service and token, and parses what it passed over", async () => {
    const s = store();
    await db.sql`update public.google_ai_model_limits set rpd = 0 where model = 'gemini-2.5-flash'`;
    try {
      const served = await s.reserve(
        params({ model: "gemini-2.5-flash", fallbackModels: ["gemma-3-27b-it"], requestId: "chain-1" }),
      );
      expect(served).toMatchObject({
        ok: true,
        model: "gemma-3-27b-it",
        fallbackFrom: [{ model: "gemini-2.5-flash", limit: "rpd", retryAfterMs: expect.any(Number) }],
      });
      // The answer's quota is the serving model's, read in the same statement.
      expect((served as Reservation).quota).toMatchObject({
        model: "gemma-3-27b-it",
        quotaGroup: (served as Reservation).quotaGroup,
      });
      const refused = await s.reserve(
        params({ model: "gemini-2.5-flash", fallbackModels: ["gemma-3-27b-it"], estimatedTokens: 200_000 }),
      );
      expect(refused).toMatchObject({
        ok: false,
        limit: "rpd",
        model: "gemini-2.5-flash",
        fallbackFrom: [{ model: "gemini-2.5-flash", limit: "rpd" }, {
          model: "gemma-3-27b-it",
          limit: "too_large",
          retryAfterMs: null,
        }],
      });
      expect((refused as Refusal).quota).toMatchObject({ model: "gemini-2.5-flash", dayLeft: 0 });

      const [{ c }] = await db
        .sql`select public.google_ai_create_client('pg-store-chain', array['gemini-2.5-flash', 'gemma-3-27b-it']) as c`;
      const token = `evegw_tok_${randomBytes(32).toString("base64url")}`;
      await db.sql`select public.google_ai_mint_token(${sha256(c.secret)}, ${sha256(token)})`;
      const asToken = await s.reserve(params({
        caller: { kind: "token", tokenHash: sha256(token) },
        model: "gemini-2.5-flash",
        fallbackModels: ["gemma-3-27b-it"],
      }));
      expect(asToken).toMatchObject({
        ok: true,
        model: "gemma-3-27b-it",
        fallbackFrom: [{ model: "gemini-2.5-flash", limit: "rpd" }],
      });
    } finally {
      await db.sql`update public.google_ai_model_limits set rpd = 20 where model = 'gemini-2.5-flash'`;
    }
  });

  it("answers 503 unavailable when the database is down or not configured, and logs the cause sanitized", async () => {
    const log = (m: string) => logged.push(m);
    const dead = createDatabase({
      config: dbConfigFromEnv(() => "postgres://postgres:hunter2secret@127.0.0.1:1/postgres"),
      applicationName: "pg-store-test",
      log,
    });
    const none = createDatabase({ config: null, applicationName: "pg-store-test", log });
    try {
      for (
        const s of [createPgStore({ database: dead, logError: log }), createPgStore({ database: none, logError: log })]
      ) {
        const error = await s.reserve(params()).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(GatewayError);
        expect((error as GatewayError).code).toBe("unavailable");
        expect((error as GatewayError).status).toBe(503);
        expect(Number((error as GatewayError).headers?.["Retry-After"])).toBeGreaterThanOrEqual(1);
        expect((error as GatewayError).message).not.toMatch(/hunter2|127\.0\.0\.1|ECONNREFUSED/);
      }
      expect(logged.join("\n")).not.toContain("hunter2secret");
      expect(logged.some((l) => /^database down .*reserve: .*ECONNREFUSED/.test(l))).toBe(true);
      expect(logged.some((l) => l.startsWith("reserve: no database configured"))).toBe(true);
    } finally {
      await dead.close();
    }
  });
});

// Successes' finalizes that meet in one store are written together (finalize-queue.ts): one statement
// of google_ai_finalize_calls instead of one google_ai_finalize each, with the same rows and figures.
describe("pg-store: successes' finalizes written together", () => {
  let tracked: Database;
  /** The store's statements by what they are (one database.run = one statement). */
  let statements: Record<string, number>;
  const countingStore = () =>
    createPgStore({
      database: {
        run: (what, work) => {
          statements[what] = (statements[what] ?? 0) + 1;
          return tracked.run(what, work);
        },
      },
      logError: (m) => logged.push(m),
    });
  const success = (reservationId: string, i: number, extra: Partial<FinalizeParams> = {}): FinalizeParams => ({
    reservationId,
    outcome: "succeeded",
    inputTokens: 10 + i,
    outputTokens: 3 + i,
    httpStatus: 200,
    errorCode: null,
    quotaId: null,
    errorMessage: null,
    latencyMs: 40 + i,
    cooldownUntil: null,
    cooldownUntilProviderMidnight: false,
    response: null,
    addedMs: 1.4,
    // The counter row they settle (reserveMany books every one on it): finalizes are written together per row.
    booked: { quotaGroup: "proj-default", model: "gemma-3-27b" },
    ...extra,
  });
  const reserveMany = async (s: ReturnType<typeof countingStore>, prefix: string, n: number, caller?: ReserveParams["caller"]) => {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const r = await s.reserve(params({ requestId: `${prefix}-${i}`, ...(caller ? { caller } : {}) }));
      expect(r).toMatchObject({ ok: true, quotaGroup: "proj-default" });
      ids.push((r as Reservation).reservationId);
    }
    return ids;
  };
  /** The group's counter figures, summed over its rows. */
  const counterFigures = async () => {
    const [row] = await db.sql`
      select sum(rpm_used)::int as rpm, sum(tpm_used)::int as tpm, sum(rpd_used)::int as rpd,
             sum(window_requests)::int as window_requests, sum(window_tokens)::int as window_tokens
      from public.google_ai_usage_counters where quota_group = 'proj-default'`;
    return row!;
  };
  const minus = (a: Record<string, number>, b: Record<string, number>) =>
    Object.fromEntries(Object.keys(a).map((k) => [k, a[k]! - b[k]!]));
  const functionCalls = async () => {
    const rows = await db.sql<{ name: string; calls: number }[]>`
      select funcname as name, calls::int as calls from pg_stat_user_functions
      where schemaname = 'public' and funcname in ('google_ai_write_attempts', 'google_ai_finalize_calls')`;
    return Object.fromEntries(rows.map((r) => [r.name, r.calls]));
  };

  beforeAll(async () => {
    // Counted by PostgreSQL itself: connections opened from here on track every function's calls.
    await db.sql.unsafe(`alter database "${db.name}" set track_functions = 'all'`);
    await db.sql`update public.google_ai_model_limits set rpm = 100000, tpm = 100000000, rpd = 1000000
                 where model = 'gemma-3-27b-it'`;
    await db.sql`update public.google_ai_api_keys set is_active = true, disabled_reason = null`;
    await db.sql`delete from public.google_ai_cooldowns`;
  });

  beforeEach(() => {
    statements = {};
    tracked = createDatabase({
      config: dbConfigFromEnv((n) => (n === "SUPABASE_DB_URL" ? gatewayUrl : undefined)),
      applicationName: "pg-store-batch-test",
    });
  });

  afterEach(async () => {
    await tracked.close();
  });

  it("20 concurrent successes: one alone, the rest in one google_ai_finalize_calls, the same rows and figures as one by one", async () => {
    const s = countingStore();
    // Both rounds in one calendar minute (the counter rows are per minute): not within 3 s of its end.
    const leftOfMinute = 60_000 - (Date.now() % 60_000);
    if (leftOfMinute < 3_000) await new Promise((r) => setTimeout(r, leftOfMinute + 100));
    // One by one: the figures to match.
    const oneByOne = await reserveMany(s, "seq", 20);
    const beforeSeq = await counterFigures();
    for (const [i, id] of oneByOne.entries()) await s.finalize(success(id, i));
    const seqDelta = minus(await counterFigures(), beforeSeq);
    expect(statements).toMatchObject({ finalize: 20 });
    expect(statements["finalize batch"]).toBeUndefined();

    const ids = await reserveMany(s, "batch", 20);
    const before = await counterFigures();
    statements = {};
    await Promise.all(ids.map((id, i) => s.finalize(success(id, i, i === 5 ? { response: { text: "kept\u0000" } } : {}))));
    expect(minus(await counterFigures(), before)).toEqual(seqDelta);
    // The first went at once, alone; the 19 that met it, in one statement.
    expect(statements).toEqual({ finalize: 1, "finalize batch": 1 });

    const attempts = await db.sql`
      select request_id, status, input_tokens, output_tokens, latency_ms, added_ms from public.google_ai_attempts
      where reservation_id = any(${ids}::uuid[]) order by latency_ms`;
    expect(attempts).toEqual(ids.map((_, i) => ({
      request_id: `batch-${i}`,
      status: "succeeded",
      input_tokens: 10 + i,
      output_tokens: 3 + i,
      latency_ms: 40 + i,
      added_ms: 1,
    })));
    const usage = await db.sql`select prompt_tokens, completion_tokens from public.token_usage
                               where request_id like 'batch-%' order by prompt_tokens`;
    expect(usage).toEqual(ids.map((_, i) => ({ prompt_tokens: 10 + i, completion_tokens: 3 + i })));
    // The answer kept for replay went through jsonbText as the lone call's does (NUL dropped).
    const [kept] = await db.sql`select response from public.google_ai_responses where request_id = 'batch-5'`;
    expect(kept).toEqual({ response: { text: "kept" } });

    // PostgreSQL's own count since track_functions (flushed when the connections end): every write is
    // one google_ai_finalize_calls (through google_ai_finalize_call), 20 one by one, then the lone first
    // of the 20 together and one batch; each writes its calls' attempt rows in one statement
    // (google_ai_write_attempts), the batch's 19 too.
    await tracked.close();
    await expect.poll(functionCalls, { timeout: 15_000, interval: 200 })
      .toEqual({ google_ai_write_attempts: 22, google_ai_finalize_calls: 22 });
  });

  it("20 concurrent reservations of one caller: one alone, the rest in google_ai_reserve_calls (at most 16 each); another caller's apart", async () => {
    const s = countingStore();
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => s.reserve(params({ requestId: `coal-${i}` }))));
    expect(answers.every((a) => a.ok)).toBe(true);
    expect(new Set(answers.map((a) => (a as Reservation).reservationId)).size).toBe(20);
    // The first at once, alone; the 19 that met it in two batches (16, then 3), one after the other.
    expect(statements).toEqual({ reserve: 1, "reserve batch": 2 });
    const rows = await db.sql<{ request_id: string; status: string }[]>`
      select request_id, status from public.google_ai_attempts where request_id like 'coal-%' order by request_id`;
    expect(rows).toHaveLength(20);
    expect(new Set(rows.map((r) => r.status))).toEqual(new Set(["reserved"]));
    // Each answer is its own call's: its reservation is that request's row.
    const byId = new Map((await db.sql<{ request_id: string; reservation_id: string }[]>`
      select request_id, reservation_id::text from public.google_ai_attempts where request_id like 'coal-%'`)
      .map((r) => [r.reservation_id, r.request_id]));
    answers.forEach((a, i) => expect(byId.get((a as Reservation).reservationId)).toBe(`coal-${i}`));

    statements = {};
    const two = await Promise.all([0, 1, 2, 3].map((i) =>
      s.reserve(params({ requestId: `coal2-${i}`, caller: { kind: "service", name: i % 2 ? "pg-store-b" : "pg-store-a" } }))));
    expect(two.every((a) => a.ok)).toBe(true);
    // Each caller's first at once, its second after it, alone (a batch of one): never two callers together.
    expect(statements).toEqual({ reserve: 4 });
  });

  it("successes finalized while their caller's reservations are under way ride in its next CALL; untaken, or another caller's, they go by themselves", async () => {
    const s = countingStore();
    const counted = await functionCalls();
    const ids = await reserveMany(s, "ride", 3);
    statements = {};
    // The first reservation goes at once, alone; the two behind it go together, and take the finalizes
    // written meanwhile with them (google_ai_reserve_calls' p_finalizes): no finalize statement of their own.
    const reservations = [0, 1, 2].map((i) => s.reserve(params({ requestId: `ride-r${i}` })));
    const finalizes = ids.slice(0, 2).map((id, i) => s.finalize(success(id, i)));
    expect((await Promise.all(reservations)).every((r) => r.ok)).toBe(true);
    await Promise.all(finalizes);
    expect(statements).toEqual({ reserve: 1, "reserve batch": 1 });
    // One written while the last reservation is in flight, none behind it: it goes by itself when that ends.
    statements = {};
    const last = s.reserve(params({ requestId: "ride-r3" }));
    const alone = s.finalize(success(ids[2]!, 2));
    await Promise.all([last, alone]);
    expect(statements).toEqual({ reserve: 1, finalize: 1 });
    // Another caller's success never rides with this caller's reservations: it goes by itself at once.
    const [otherId] = await reserveMany(s, "ride-other", 1, { kind: "service", name: "pg-store-other" });
    statements = {};
    const mine = s.reserve(params({ requestId: "ride-r4" }));
    const theirs = s.finalize(success(otherId!, 0));
    await Promise.all([mine, theirs]);
    expect(statements).toEqual({ reserve: 1, finalize: 1 });
    const rows = await db.sql<{ request_id: string; status: string; input_tokens: number }[]>`
      select request_id, status, input_tokens from public.google_ai_attempts where reservation_id = any(${ids}::uuid[])
      order by request_id`;
    expect(rows).toEqual(ids.map((_, i) => ({ request_id: `ride-${i}`, status: "succeeded", input_tokens: 10 + i })));
    await tracked.close();
    // PostgreSQL's count: the four outcomes written in three google_ai_finalize_calls (the ride, then the
    // one untaken, then the other caller's), each with one statement for its attempt rows.
    await expect.poll(functionCalls, { timeout: 15_000, interval: 200 }).toEqual({
      google_ai_write_attempts: (counted.google_ai_write_attempts ?? 0) + 3,
      google_ai_finalize_calls: (counted.google_ai_finalize_calls ?? 0) + 3,
    });
  });

  it("a lone success's finalize is written alone, not as a batch", async () => {
    const s = countingStore();
    const [id] = await reserveMany(s, "lone", 1);
    await s.finalize(success(id!, 0));
    expect(statements).toMatchObject({ finalize: 1 });
    expect(statements["finalize batch"]).toBeUndefined();
    const [att] = await db.sql`select status from public.google_ai_attempts where reservation_id = ${id!}`;
    expect(att).toEqual({ status: "succeeded" });
  });

  /** The group's rests for the model, by reason. */
  const rests = async () =>
    (await db.sql`select reason from public.google_ai_cooldowns where quota_group = 'proj-default'
                  and model = 'gemma-3-27b-it'`).map((r) => r.reason as string);

  it("successes that carry the provider's room above the margin go with the others: one alone, the rest in one batch, no rest", async () => {
    const s = countingStore();
    const ids = await reserveMany(s, "room", 4);
    statements = {};
    const room = { requests: 900, tokens: 90_000, until: new Date(Date.now() + 60_000) };
    await Promise.all(ids.map((id, i) => s.finalize(success(id, i, { room }))));
    expect(statements).toEqual({ finalize: 1, "finalize batch": 1 });
    const rows = await db.sql`select status from public.google_ai_attempts where reservation_id in ${db.sql(ids)}`;
    expect(rows.map((r) => r.status)).toEqual(["succeeded", "succeeded", "succeeded", "succeeded"]);
    expect(await rests()).toEqual([]);
  });

  it("a batch weighs each call's room against its margin before its first counter row: the rest written as alone", async () => {
    const s = countingStore();
    const ids = await reserveMany(s, "near", 4);
    statements = {};
    // Two left; the first call's margin counts the three others out (twice) and admitted since (once):
    // the model rests (google_ai_room_rest, read in the batch before it locks the counter row).
    const room = { requests: 2, tokens: null, until: new Date(Date.now() + 60_000) };
    await Promise.all(ids.map((id, i) => s.finalize(success(id, i, { room }))));
    expect(statements).toEqual({ finalize: 1, "finalize batch": 1 });
    expect(await rests()).toEqual(["provider_room"]);
    await db.sql`delete from public.google_ai_cooldowns`;
  });

  it("a success the answer waits for: one CALL of google_ai_finalize_call, alone though others meet it", async () => {
    const s = countingStore();
    const ids = await reserveMany(s, "first", 3);
    statements = {};
    const room = { requests: 1, tokens: null, until: new Date(Date.now() + 60_000) };
    await Promise.all(ids.map((id, i) => s.finalize(success(id, i, i === 1 ? { room, beforeAnswer: true } : {}))));
    // The first alone, the third on its own too (nothing else met it), the one before its answer by its CALL.
    expect(statements).toEqual({ finalize: 2, "finalize before answer": 1 });
    const rows = await db.sql`select request_id, status from public.google_ai_attempts
                              where reservation_id = any(${ids}::uuid[]) order by request_id`;
    expect(rows.map((r) => `${r.request_id} ${r.status}`)).toEqual(["first-0 succeeded", "first-1 succeeded", "first-2 succeeded"]);
    // Its caller is the only one its margin leaves out; two others out: the model rests.
    expect(await rests()).toEqual(["provider_room"]);
    await db.sql`delete from public.google_ai_cooldowns`;
    // Written again (a retry after a lost answer): the finalize answers "not open", nothing changes.
    await s.finalize(success(ids[1]!, 1, { room, beforeAnswer: true }));
  });

  it("google_ai_finalize_call: the finalize's transaction commits without waiting for the disk, then the CALL's second one", async () => {
    const s = countingStore();
    const [id] = await reserveMany(s, "flushed", 1);
    // What the finalize's own transaction ran with, seen from the attempt row's update.
    await db.sql`create table public.test_finalize_seen (xid xid8, synchronous_commit text)`;
    await db.sql`grant insert on public.test_finalize_seen to eve_gateway`;
    await db.sql`create function public.test_finalize_seen() returns trigger language plpgsql as $$
      begin insert into public.test_finalize_seen values (pg_current_xact_id(), current_setting('synchronous_commit'));
      return new; end $$`;
    await db.sql`create trigger test_finalize_seen after update of status on public.google_ai_attempts
      for each row when (old.status = 'reserved' and new.status <> 'reserved') execute function public.test_finalize_seen()`;
    try {
      await s.finalize(success(id!, 0, { beforeAnswer: true }));
      const seen = await db.sql`select xid::text, synchronous_commit, pg_xact_status(xid) as status from public.test_finalize_seen`;
      expect(seen.map((r) => [r.synchronous_commit, r.status])).toEqual([["off", "committed"]]);
      // The procedure commits inside: it cannot run in a client's transaction block.
      const call = `call public.google_ai_finalize_call(p_calls => '[]'::jsonb)`;
      await expect(db.sql.begin((tx) => tx.unsafe(call))).rejects.toMatchObject({ code: "2D000" });
      // Nor in a text of several statements (one implicit transaction); alone, on one connection, it
      // leaves the session's setting as it was.
      await expect(db.sql.unsafe(`${call}; select 1`)).rejects.toMatchObject({ code: "2D000" });
      const one = await db.sql.reserve();
      try {
        const [before] = await one`select current_setting('synchronous_commit') as setting`;
        await one.unsafe(call);
        expect((await one`select current_setting('synchronous_commit') as setting`)[0]).toEqual(before);
      } finally {
        one.release();
      }
    } finally {
      await db.sql`drop trigger test_finalize_seen on public.google_ai_attempts`;
      await db.sql`drop function public.test_finalize_seen()`;
      await db.sql`drop table public.test_finalize_seen`;
    }
  });

  it("a batch with one call the database refuses: the others land, that one alone rejects", async () => {
    const s = countingStore();
    const ids = await reserveMany(s, "onebad", 4);
    statements = {};
    // A quota cause the attempts' check refuses: the batch fails whole, then each goes alone.
    const bad = { quotaCause: "not-a-cause" } as unknown as Partial<FinalizeParams>;
    const outcomes = await Promise.allSettled(ids.map((id, i) => s.finalize(success(id, i, i === 2 ? bad : {}))));
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "fulfilled", "rejected", "fulfilled"]);
    expect((outcomes[2] as PromiseRejectedResult).reason).toBeInstanceOf(GatewayError);
    // The first alone; the three that met it in one batch, refused; then those three alone.
    expect(statements).toEqual({ finalize: 4, "finalize batch": 1 });
    const rows = await db.sql`select request_id, status from public.google_ai_attempts
                              where reservation_id = any(${ids}::uuid[]) order by request_id`;
    expect(rows).toEqual([
      { request_id: "onebad-0", status: "succeeded" },
      { request_id: "onebad-1", status: "succeeded" },
      { request_id: "onebad-2", status: "reserved" },
      { request_id: "onebad-3", status: "succeeded" },
    ]);
    expect(logged.some((l) => l.startsWith("finalize batch failed:"))).toBe(true);
  });
});
