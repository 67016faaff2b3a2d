// A model past its row's shutdown date, on the reservation's own clock (google_ai_reserve_models_at's
// p_now): passed over without booking to its row's successor in the same reservation, for every
// provider (Anthropic's, Google's, OpenAI's rows), alone or in a chain, the answer naming what was asked
// for and why it was passed over; a token keeps to its models; a row with no successor is refused as
// withdrawn. And Claude's rows as the rows migration leaves them (20261122000200_rows_and_schedule.sql, its
// rows of 2026-11-28): the current models with limits, prices and sources, the 4.5 rows with their ends,
// an owner's edit kept, applied twice alike.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrationsDir } from "../../shared/db/migrate.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";
import { reservation } from "../support/reserve-answer.ts";

const ROWS_FILE = path.join(migrationsDir, "20261122000200_rows_and_schedule.sql");
const SONNET_45 = "claude-sonnet-4-5-20250929";
const SONNET_55 = "claude-sonnet-5-5";
const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

let db: TestDatabase;
let rowsFile: string;
/** The reservation's clock: each call a second later, from the last day Sonnet 4.5 serves on. */
let clock = Date.parse("2026-11-29T12:00:00Z");
const tick = () => new Date((clock += 1000)).toISOString();

beforeAll(async () => {
  db = await freshDatabase("model_shutdown");
  rowsFile = await readFile(ROWS_FILE, "utf8");
  await db.sql`delete from public.google_ai_api_keys`;
  await db.sql`insert into public.google_ai_api_keys (key_alias, provider, env_var_name, project_id, priority) values
    ('g', 'google', 'GOOGLE_API_KEY', 'proj-g', 1), ('o', 'openai', 'OPENAI_API_KEY', 'org-o', 1),
    ('a', 'anthropic', 'ANTHROPIC_API_KEY', 'org-a', 1)`;
  // The owner chose Opus 4.5's successor before the rows came (the template's rows are the migrations',
  // without the dates, as the rows of a project seeded before them were).
  await db.sql`update public.google_ai_model_limits set successor = 'claude-opus-4-8' where model = 'claude-opus-4-5-20251101'`;
  await db.sql.unsafe(rowsFile).simple();
}, 60_000);

afterAll(async () => {
  await db?.drop();
});

async function reserve(models: string[], requestId: string, extra: { token?: string; output?: number[] } = {}) {
  const [{ r }] = await db.sql`select public.google_ai_reserve_models_at(${tick()}::timestamptz,
    jsonb_populate_record(null::public.google_ai_reservation, ${reservation({ models, estimated_tokens: 10,
      caller: extra.token === undefined ? "shutdown-test" : null, token_hash: extra.token ?? null,
      request_id: requestId, output_tokens: extra.output ?? null })}::text::jsonb)) as r`;
  return r;
}

async function attempts(requestId: string) {
  return await db.sql`select status, model, requested_model, limit_hit, refusal_cause, booked_output_tokens
    from public.google_ai_attempts where request_id = ${requestId} order by id`;
}

describe("Claude's rows as Anthropic offers them on 2026-11-28", () => {
  it("the current models are rows with limits, prices and sources; the 4.5 rows end for their successors", async () => {
    const rows = await db.sql`select model, provider, rpm, itpm, otpm, tpm, bucket_share::float as share,
        booked_output_tokens as booked, supports_json_mode as json, supports_tools as tools,
        limits_source like 'Assumed, read 2026-11-28:%' as sourced
      from public.google_ai_model_limits where model like 'claude-%-5-5' order by model`;
    expect(rows).toEqual([
      { model: "claude-haiku-5-5", provider: "anthropic", rpm: 50, itpm: 50000, otpm: 10000, tpm: null, share: 1,
        booked: 4096, json: false, tools: true, sourced: true },
      { model: "claude-opus-5-5", provider: "anthropic", rpm: 50, itpm: 30000, otpm: 8000, tpm: null, share: 1,
        booked: 4096, json: false, tools: true, sourced: true },
      { model: SONNET_55, provider: "anthropic", rpm: 50, itpm: 30000, otpm: 8000, tpm: null, share: 1,
        booked: 4096, json: false, tools: true, sourced: true },
    ]);
    const prices = await db.sql`select model, input_per_mtok::float as input, output_per_mtok::float as output,
        cached_input_per_mtok::float as cached, cache_write_5m_per_mtok::float as w5m,
        cache_write_1h_per_mtok::float as w1h, read_on::text, length(source) > 40 as sourced
      from public.google_ai_model_prices where model like 'claude-%-5-5' and service_tier = 'standard' order by model`;
    expect(prices).toEqual([
      { model: "claude-haiku-5-5", input: 0.1, output: 0.5, cached: 0.01, w5m: 0.125, w1h: 0.2, read_on: "2026-11-28", sourced: true },
      { model: "claude-opus-5-5", input: 4, output: 20, cached: 0.4, w5m: 5, w1h: 8, read_on: "2026-11-28", sourced: true },
      { model: SONNET_55, input: 2, output: 10, cached: 0.1, w5m: 2.5, w1h: 4, read_on: "2026-11-28", sourced: true },
    ]);
    const ends = await db.sql`select model, shutdown_date::text as shutdown, successor,
        limits_source like '%deprecated-models%' or limits_source like '%No shutdown announced%' as sourced
      from public.google_ai_model_limits where model like 'claude-%-4-5-%' order by model`;
    expect(ends).toEqual([
      { model: "claude-haiku-4-5-20251001", shutdown: null, successor: "claude-haiku-5-5", sourced: true },
      // The owner's successor stays; the date it lacked is set.
      { model: "claude-opus-4-5-20251101", shutdown: "2027-01-22", successor: "claude-opus-4-8", sourced: true },
      { model: SONNET_45, shutdown: "2026-11-30", successor: SONNET_55, sourced: true },
    ]);
  });

  it("applied again, changes nothing, and keeps a price or a date the owner set since", async () => {
    await db.sql`update public.google_ai_model_prices set input_per_mtok = 2.2 where model = ${SONNET_55}`;
    await db.sql`update public.google_ai_model_limits set shutdown_date = '2026-12-15' where model = ${SONNET_45}`;
    const snapshot = () => db.sql`select to_jsonb(l) as l from public.google_ai_model_limits l
      union all select to_jsonb(p) from public.google_ai_model_prices p order by 1`;
    const before = await snapshot();
    await db.sql.unsafe(rowsFile).simple();
    expect(await snapshot()).toEqual(before);
    await db.sql`update public.google_ai_model_prices set input_per_mtok = 2 where model = ${SONNET_55}`;
    await db.sql`update public.google_ai_model_limits set shutdown_date = '2026-11-30' where model = ${SONNET_45}`;
  });

  it("every seeded model has a price", async () => {
    const unpriced = await db.sql`select l.model from public.google_ai_model_limits l
      where not exists (select 1 from public.google_ai_model_prices p where p.model = l.model) order by l.model`;
    expect(unpriced).toEqual([]);
  });
});

describe("a model past its row's shutdown date, on the reservation's clock", () => {
  it("serves itself on its last day (the day in UTC)", async () => {
    expect(await reserve(["claude-sonnet-4-5"], "sd-before")).toMatchObject({ ok: true, model: SONNET_45 });
  });

  it("Anthropic's: passed over to its successor in the same reservation, nothing booked for it", async () => {
    clock = Date.parse("2026-12-01T09:00:00Z");
    const r = await reserve(["claude-sonnet-4-5"], "sd-claude", { output: [1000] });
    expect(r).toMatchObject({ ok: true, model: SONNET_55, requested_model: SONNET_45,
      fallback_from: [{ model: SONNET_45, limit: "withdrawn", cause: "shut_down", retry_after_ms: null }] });
    // One refused row for the model passed over, the admission on the successor booking the answer
    // the request is sent with (its predecessor's).
    expect(await attempts("sd-claude")).toEqual([
      { status: "refused", model: SONNET_45, requested_model: "claude-sonnet-4-5", limit_hit: "withdrawn",
        refusal_cause: "shut_down", booked_output_tokens: null },
      { status: "reserved", model: SONNET_55, requested_model: "claude-sonnet-4-5", limit_hit: null,
        refusal_cause: null, booked_output_tokens: 1000 },
    ]);
    const [{ n }] = await db.sql`select count(*)::int as n from public.google_ai_attempts
      where model = ${SONNET_45} and admitted_at > '2026-11-30'`;
    expect(n).toBe(0);
  });

  it("Google's and OpenAI's rows alike", async () => {
    // The seed's date for gemini-2.5-flash (the template's rows have none), and one for gpt-4o.
    await db.sql`update public.google_ai_model_limits set shutdown_date = '2026-12-01', successor = 'gemini-3.5-flash-lite'
                 where model = 'gemini-2.5-flash'`;
    await db.sql`update public.google_ai_model_limits set shutdown_date = '2026-12-01', successor = 'gpt-4o-mini'
                 where model = 'gpt-4o'`;
    expect(await reserve(["gemini-2.5-flash"], "sd-google")).toMatchObject({ ok: true, model: "gemini-3.5-flash-lite",
      requested_model: "gemini-2.5-flash", fallback_from: [{ model: "gemini-2.5-flash", cause: "shut_down" }] });
    expect(await reserve(["gpt-4o"], "sd-openai")).toMatchObject({ ok: true, model: "gpt-4o-mini",
      requested_model: "gpt-4o", fallback_from: [{ model: "gpt-4o", cause: "shut_down" }] });
    for (const id of ["sd-google", "sd-openai"]) {
      expect((await attempts(id)).map((a) => [a.status, a.refusal_cause])).toEqual([["refused", "shut_down"], ["reserved", null]]);
    }
  });

  it("in a chain, its successor takes its place before the chain's next model", async () => {
    expect(await reserve(["claude-sonnet-4-5", "gemini-3.8-flash"], "sd-chain")).toMatchObject({ ok: true,
      model: SONNET_55, fallback_from: [{ model: SONNET_45, limit: "withdrawn", cause: "shut_down" }] });
  });

  it("a token reaches the successor only when it may use it", async () => {
    const tokenFor = async (name: string, models: string[]) => {
      const [{ c }] = await db.sql`select public.google_ai_create_client(${name}, ${models}::text[]) as c`;
      const hash = sha256(`${name}-token`);
      await db.sql`select public.google_ai_mint_token(${sha256(c.secret)}, ${hash})`;
      // Minted on the real clock, used on the reservation's: it lives until then.
      await db.sql`update public.google_ai_tokens set expires_at = '2027-01-01' where token_hash = ${hash}`;
      return hash;
    };
    const both = await tokenFor("sd-both", [SONNET_45, SONNET_55]);
    const viaBoth = await reserve([SONNET_45], "sd-token-both", { token: both });
    expect(viaBoth, JSON.stringify(viaBoth)).toMatchObject({ ok: true, model: SONNET_55 });
    const old = await tokenFor("sd-old", [SONNET_45]);
    expect(await reserve([SONNET_45], "sd-token-old", { token: old })).toMatchObject({ ok: false, limit: "withdrawn",
      cause: "shut_down", model: SONNET_45, successor: SONNET_55 });
    expect((await attempts("sd-token-old")).map((a) => [a.status, a.limit_hit, a.refusal_cause]))
      .toEqual([["refused", "withdrawn", "shut_down"]]);
  });

  it("with no successor that is a row, is refused as withdrawn, logged once", async () => {
    await db.sql`update public.google_ai_model_limits set shutdown_date = '2026-11-01', successor = null
                 where model = 'gemini-3.1-flash-lite'`;
    expect(await reserve(["gemini-3.1-flash-lite"], "sd-none")).toMatchObject({ ok: false, limit: "withdrawn",
      cause: "shut_down", successor: null });
    await db.sql`update public.google_ai_model_limits set successor = 'gemini-9-flash' where model = 'gemini-3.1-flash-lite'`;
    expect(await reserve(["gemini-3.1-flash-lite"], "sd-unknown")).toMatchObject({ ok: false, limit: "withdrawn",
      cause: "shut_down", successor: "gemini-9-flash" });
    for (const id of ["sd-none", "sd-unknown"]) {
      expect((await attempts(id)).map((a) => [a.status, a.limit_hit, a.refusal_cause])).toEqual([["refused", "withdrawn", "shut_down"]]);
    }
  });
});
