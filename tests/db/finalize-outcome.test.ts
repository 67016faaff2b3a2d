// Finalize takes one outcome record (google_ai_attempt_outcome, 15_request_log.sql), read from the
// caller's JSON as jsonb_populate_record reads it: a key the database does not know is ignored, one
// left out is null; the mapper that writes it (store/attempt-outcome.ts) names exactly the type's
// attributes; a cut stream and a withdrawn model are kinds of it (a cut carries its stated limits);
// a finalize_lost line replays through google_ai_finalize_calls as logged, each call
// {reservation_id, outcome: {...}}. Since 1.0 the former flat shape (its `outcome` the kind) is
// refused, as are the former signatures (google_ai_finalize's 27 parameters, google_ai_finalize_cut,
// google_ai_finalize_withdrawn: gone, what they wrote the one entry writes) and the former words
// (kind google_error, cut_by google): each changing nothing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FinalizeParams } from "../../supabase/functions/llm-invoke/contract.ts";
import { attemptOutcome } from "../../supabase/functions/llm-invoke/store/attempt-outcome.ts";
import { lostRecord } from "../../supabase/functions/llm-invoke/attempt/finalize.ts";
import { reservation, type ReserveAnswer } from "../support/reserve-answer.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";

let db: TestDatabase;
const MODEL = "outcome-model";
const WITHDRAWN = "outcome-withdrawn";
const ORG = "org-outcome";

beforeAll(async () => {
  db = await freshDatabase("finalize_outcome");
  await db.sql`delete from public.google_ai_api_keys`;
  await db.sql`insert into public.google_ai_api_keys (key_alias, provider, env_var_name, project_id, priority)
               values ('openai-outcome', 'openai', 'OPENAI_OUTCOME_KEY', ${ORG}, 1)`;
  await db.sql`insert into public.google_ai_model_limits (model, provider, rpm, tpm, provider_limits)
               values (${MODEL}, 'openai', 1000, 1000000, 'keep'), (${WITHDRAWN}, 'openai', 1000, 1000000, 'keep')`;
}, 60_000);

afterAll(async () => {
  await db?.drop();
});

async function admit(model = MODEL): Promise<string> {
  const [row] = await db.sql<{ r: ReserveAnswer }[]>`select public.google_ai_reserve_models_at(now(),
    jsonb_populate_record(null::public.google_ai_reservation, ${reservation({ models: [model], estimated_tokens: 50,
      caller: "outcome" })}::text::jsonb)) as r`;
  expect(row!.r.ok, JSON.stringify(row!.r)).toBe(true);
  return row!.r.reservation_id!;
}

async function finalize(id: string, outcome: object) {
  const [row] = await db.sql<{ r: Record<string, unknown> }[]>`select public.google_ai_finalize(
    p_reservation_id => ${id}::uuid, p_outcome => ${JSON.stringify(outcome)}::text::jsonb) as r`;
  return row!.r;
}

/** A finalize_lost line's JSON, replayed as logged (one call of the batch). */
async function replay(line: object) {
  const [row] = await db.sql<{ r: Record<string, unknown>[] }[]>`select public.google_ai_finalize_calls(
    jsonb_build_array(${JSON.stringify(line)}::text::jsonb)) as r`;
  return row!.r[0]!;
}

async function attempt(id: string) {
  const [row] = await db.sql`select status, input_tokens, output_tokens, thinking_tokens, http_status, error_code,
                                    latency_ms, served_tier, added_ms
                             from public.google_ai_attempts where reservation_id = ${id}::uuid`;
  return row!;
}

const everything: FinalizeParams = {
  reservationId: "5b0c0000-0000-4000-8000-0000000000f1",
  outcome: "cut",
  inputTokens: 1,
  outputTokens: 2,
  cachedInputTokens: 0,
  thinkingTokens: 0,
  cacheWrite5mTokens: 0,
  cacheWrite1hTokens: 0,
  settledTokens: 1,
  httpStatus: 200,
  errorCode: null,
  quotaId: null,
  quotaCause: null,
  errorMessage: null,
  latencyMs: 10,
  addedMs: 1,
  firstByteMs: 2,
  cooldownUntil: null,
  cooldownUntilProviderMidnight: false,
  keyRejected: false,
  serviceTier: null,
  servedTier: null,
  room: { requests: 1, tokens: 1, until: new Date(0) },
  statedLimits: { rpm: 1 },
  cutBy: "client",
  successor: null,
  response: { text: "answer" },
};

describe("google_ai_finalize(p_reservation_id, p_outcome)", () => {
  it("takes at most 3 parameters; the mapper names exactly the type's attributes", async () => {
    const [entry] = await db.sql<{ n: number }[]>`select max(p.pronargs)::int as n from pg_proc p
      where p.proname = 'google_ai_finalize' and p.proargtypes[1] = 'jsonb'::regtype`;
    expect(entry!.n).toBe(2);
    const attributes = await db.sql<{ name: string }[]>`select a.attname as name from pg_attribute a
      where a.attrelid = 'public.google_ai_attempt_outcome'::regclass and a.attnum > 0 and not a.attisdropped`;
    expect(Object.keys(attemptOutcome(everything)).sort()).toEqual(attributes.map((a) => a.name).sort());
  });

  it("ignores a key it does not know and reads one left out as null", async () => {
    const id = await admit();
    expect(await finalize(id, { kind: "succeeded", input_tokens: 11, output_tokens: 7, tokens_of_tomorrow: 3 }))
      .toEqual({ ok: true, status: "succeeded", cooldown_until: null });
    expect(await attempt(id)).toMatchObject({
      status: "succeeded",
      input_tokens: 11,
      output_tokens: 7,
      thinking_tokens: null,
      http_status: null,
      latency_ms: null,
    });
  });

  it("refuses a kind it does not know, changing nothing", async () => {
    const id = await admit();
    await expect(finalize(id, { kind: "maybe" })).rejects.toThrow(/kind must be/);
    expect(await attempt(id)).toMatchObject({ status: "reserved" });
    expect(await finalize(id, { kind: "timeout", latency_ms: 5 })).toMatchObject({ ok: true, status: "timeout" });
  });

  it("writes a cut stream as a kind, its stated limits noted on the counter row", async () => {
    const id = await admit();
    expect(await finalize(id, {
      kind: "cut",
      cut_by: "client",
      input_tokens: 20,
      output_tokens: 4,
      stated_limits: [900, 1000000, null, null, null],
    })).toMatchObject({ ok: true, status: "cut" });
    expect(await attempt(id)).toMatchObject({ status: "cut", error_code: "stream_cut_by_client", http_status: 200 });
    const [counter] = await db.sql`select to_jsonb(stated_heard) as heard, to_jsonb(stated_limits) as applied
      from public.google_ai_usage_counters where quota_group = ${ORG} and model = ${MODEL}`;
    expect([counter!.heard, counter!.applied]).toContainEqual([900, 1000000, null, null, null]);
    const [usage] = await db.sql`select meta ->> 'cut_by' as cut_by from public.token_usage
      where meta ->> 'reservation_id' = ${id}`;
    expect(usage).toEqual({ cut_by: "client" });
  });

  it("writes a withdrawn model as a kind: the booking given back, the model row marked", async () => {
    const id = await admit(WITHDRAWN);
    expect(await finalize(id, { kind: "withdrawn", http_status: 404, error_message: "gone", successor: "outcome-next" }))
      .toMatchObject({ ok: true, status: "withdrawn", model: WITHDRAWN, marked: true });
    expect(await attempt(id)).toMatchObject({ status: "withdrawn", error_code: "NOT_FOUND", http_status: 404 });
    const [row] = await db.sql`select withdrawn_message, google_successor from public.google_ai_model_limits
      where model = ${WITHDRAWN}`;
    expect(row).toEqual({ withdrawn_message: "gone", google_successor: "outcome-next" });
  });
});

describe("a finalize_lost line replays as logged", () => {
  it("one the code logs now (lostRecord), its answer left out", async () => {
    const id = await admit();
    const line = lostRecord({ ...everything, reservationId: id, outcome: "succeeded", cutBy: undefined, room: null,
      statedLimits: null, servedTier: "standard", inputTokens: 377, outputTokens: 96, latencyMs: 845 }, 9, "down");
    expect(JSON.stringify(line)).not.toContain("answer\"");
    expect(await replay(line)).toMatchObject({ ok: true, status: "succeeded" });
    expect(await attempt(id)).toMatchObject({ input_tokens: 377, output_tokens: 96, latency_ms: 845, served_tier: "standard" });
  });

  it("a success in the former flat shape (its `outcome` the kind) is refused, changing nothing", async () => {
    const id = await admit();
    const former = {
      reservation_id: id, outcome: "succeeded", input_tokens: 377, output_tokens: 96, cached_input_tokens: null,
      thinking_tokens: null, cache_write_5m_tokens: null, cache_write_1h_tokens: null, settled_tokens: null,
      http_status: 200, error_code: null, quota_id: null, latency_ms: 845, cooldown_until: null,
      cooldown_until_pacific_midnight: false, key_rejected: null, quota_cause: null, service_tier: null,
      served_tier: "standard", added_ms: 9, first_byte_ms: 410, replay_answer_lost: true, tries: 9,
      last_error: "The gateway's database is not reachable now; retry shortly.",
    };
    await expect(replay(former)).rejects.toMatchObject({ code: "22023" });
    expect(await attempt(id)).toMatchObject({ status: "reserved", input_tokens: null, output_tokens: null });
    // The same success in the shape the code logs now, {reservation_id, outcome: {...}}: written.
    const { reservation_id, outcome, cooldown_until_pacific_midnight, replay_answer_lost, tries, last_error, ...fields } =
      former;
    expect(await replay({ reservation_id, outcome: { kind: outcome, ...fields,
      cooldown_until_provider_midnight: cooldown_until_pacific_midnight }, replay_answer_lost, tries, last_error }))
      .toMatchObject({ ok: true, status: "succeeded" });
    expect(await attempt(id)).toMatchObject({
      status: "succeeded", input_tokens: 377, output_tokens: 96, http_status: 200, latency_ms: 845, added_ms: 9,
    });
  });

  it("a cut stream and a 429, their outcomes' kinds cut and upstream_error", async () => {
    const cut = await admit();
    expect(await replay({ reservation_id: cut, outcome: { kind: "cut", cut_by: "upstream", input_tokens: 30,
      output_tokens: 5, http_status: 200, latency_ms: 100, cooldown_until_provider_midnight: false }, tries: 2,
      last_error: "x" })).toMatchObject({ ok: true, status: "cut" });
    expect(await attempt(cut)).toMatchObject({ status: "cut", error_code: "stream_cut_by_upstream", input_tokens: 30 });

    const limited = await admit();
    const until = new Date(Date.now() + 60_000).toISOString();
    expect(await replay({ reservation_id: limited, outcome: { kind: "upstream_error", http_status: 429,
      error_code: "rate_limit_exceeded", quota_cause: "minute", cooldown_until: until,
      cooldown_until_provider_midnight: false, latency_ms: 50 }, tries: 3, last_error: "x" }))
      .toMatchObject({ ok: true, status: "upstream_error" });
    const [rest] = await db.sql`select cause from public.google_ai_cooldowns
      where quota_group = ${ORG} and model = ${MODEL} and cooldown_until > now()`;
    expect(rest).toEqual({ cause: "minute" });
    await db.sql`delete from public.google_ai_cooldowns where quota_group = ${ORG}`;
  });
});

describe("the former signatures and words, gone at 1.0", () => {
  it("google_ai_finalize's 27 parameters, google_ai_finalize_cut and google_ai_finalize_withdrawn are gone: a call of one changes nothing", async () => {
    const [gone] = await db.sql`select
      to_regprocedure('public.google_ai_finalize(uuid, text, integer, integer, integer, text, text, text, integer,
        timestamptz, boolean, jsonb, boolean, text, text, text, integer, integer, integer, integer, timestamptz,
        integer, integer, integer, integer, integer, integer[])') as finalize,
      to_regprocedure('public.google_ai_finalize_cut(uuid, text, integer, integer, integer, text, text, text, integer,
        integer, integer, integer, integer, integer)') as cut,
      to_regprocedure('public.google_ai_finalize_withdrawn(uuid, integer, text, text, integer, text)') as withdrawn,
      to_regprocedure('public.google_ai_former_outcome(jsonb)') as former_outcome`;
    expect(gone).toEqual({ finalize: null, cut: null, withdrawn: null, former_outcome: null });
    const id = await admit();
    await expect(db.sql`select public.google_ai_finalize(${id}::uuid, 'succeeded', 12, 3, 200)`)
      .rejects.toMatchObject({ code: "42883" });
    await expect(db.sql`select public.google_ai_finalize_cut(${id}::uuid, 'client', 8, 2)`)
      .rejects.toMatchObject({ code: "42883" });
    await expect(db.sql`select public.google_ai_finalize_withdrawn(${id}::uuid)`).rejects.toMatchObject({ code: "42883" });
    expect(await attempt(id)).toMatchObject({ status: "reserved" });
  });

  it("refuses the former words, kind google_error and cut_by google (22023), changing nothing", async () => {
    const id = await admit();
    await expect(finalize(id, { kind: "google_error", http_status: 500 })).rejects.toMatchObject({ code: "22023" });
    await expect(finalize(id, { kind: "cut", cut_by: "google", input_tokens: 5, output_tokens: 1 }))
      .rejects.toMatchObject({ code: "22023" });
    await expect(replay({ reservation_id: id, outcome: { kind: "google_error", http_status: 500 } }))
      .rejects.toMatchObject({ code: "22023" });
    expect(await attempt(id)).toMatchObject({ status: "reserved", http_status: null, error_code: null });
    expect(await finalize(id, { kind: "upstream_error", http_status: 500 })).toMatchObject({ ok: true, status: "upstream_error" });
  });

  // (Last: its withdrawn outcome marks MODEL withdrawn.)
  it("what they wrote, the one entry writes: a success with its stated limits, a cut, a withdrawn model", async () => {
    const one = await admit();
    expect(await finalize(one, { kind: "succeeded", input_tokens: 12, output_tokens: 3, http_status: 200, latency_ms: 40,
      cooldown_until_provider_midnight: false, stated_limits: [901, 1000000, null, null, null] }))
      .toEqual({ ok: true, status: "succeeded", cooldown_until: null });
    expect(await attempt(one)).toMatchObject({ input_tokens: 12, output_tokens: 3, latency_ms: 40 });

    const two = await admit();
    expect(await finalize(two, { kind: "cut", cut_by: "client", input_tokens: 8, output_tokens: 2 }))
      .toMatchObject({ ok: true, status: "cut" });
    expect(await attempt(two)).toMatchObject({ status: "cut", input_tokens: 8 });

    const three = await admit();
    expect(await finalize(three, { kind: "withdrawn", http_status: 404, error_code: "NOT_FOUND", error_message: "gone again" }))
      .toMatchObject({ ok: true, status: "withdrawn", model: MODEL });
    expect(await attempt(three)).toMatchObject({ status: "withdrawn", http_status: 404, error_code: "NOT_FOUND" });
  });
});

