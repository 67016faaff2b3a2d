// Finalize takes one outcome record (google_ai_attempt_outcome, 15_request_log.sql), read from the
// caller's JSON as jsonb_populate_record reads it: a key the database does not know is ignored, one
// left out is null; the mapper that writes it (store/attempt-outcome.ts) names exactly the type's
// attributes; a cut stream and a withdrawn model are kinds of it (a cut carries its stated limits);
// a finalize_lost line replays through google_ai_finalize_calls as logged, in the shape the code
// logs now and in the former flat shape (its `outcome` the kind), and the former signatures
// (61_former_finalize.sql) still write as before.
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

  it("a success the former code logged, in its flat shape", async () => {
    const id = await admit();
    const former = {
      reservation_id: id, outcome: "succeeded", input_tokens: 377, output_tokens: 96, cached_input_tokens: null,
      thinking_tokens: null, cache_write_5m_tokens: null, cache_write_1h_tokens: null, settled_tokens: null,
      http_status: 200, error_code: null, quota_id: null, latency_ms: 845, cooldown_until: null,
      cooldown_until_pacific_midnight: false, key_rejected: null, quota_cause: null, service_tier: null,
      served_tier: "standard", added_ms: 9, first_byte_ms: 410, replay_answer_lost: true, tries: 9,
      last_error: "The gateway's database is not reachable now; retry shortly.",
    };
    expect(await replay(former)).toMatchObject({ ok: true, status: "succeeded" });
    expect(await attempt(id)).toMatchObject({
      status: "succeeded", input_tokens: 377, output_tokens: 96, http_status: 200, latency_ms: 845, added_ms: 9,
    });
  });

  it("a cut stream and a 429 the former code logged, in its flat shape", async () => {
    const cut = await admit();
    expect(await replay({ reservation_id: cut, outcome: "cut", cut_by: "upstream", input_tokens: 30, output_tokens: 5,
      http_status: 200, latency_ms: 100, cooldown_until_pacific_midnight: false, tries: 2, last_error: "x" }))
      .toMatchObject({ ok: true, status: "cut" });
    expect(await attempt(cut)).toMatchObject({ status: "cut", error_code: "stream_cut_by_upstream", input_tokens: 30 });

    const limited = await admit();
    const until = new Date(Date.now() + 60_000).toISOString();
    expect(await replay({ reservation_id: limited, outcome: "upstream_error", http_status: 429,
      error_code: "rate_limit_exceeded", quota_cause: "minute", cooldown_until: until,
      cooldown_until_pacific_midnight: false, latency_ms: 50, tries: 3, last_error: "x" }))
      .toMatchObject({ ok: true, status: "upstream_error" });
    const [rest] = await db.sql`select cause from public.google_ai_cooldowns
      where quota_group = ${ORG} and model = ${MODEL} and cooldown_until > now()`;
    expect(rest).toEqual({ cause: "minute" });
    await db.sql`delete from public.google_ai_cooldowns where quota_group = ${ORG}`;
  });
});

describe("the former signatures, until the release", () => {
  it("google_ai_finalize's 27 parameters, google_ai_finalize_cut's and google_ai_finalize_withdrawn's write as before", async () => {
    const one = await admit();
    const [a] = await db.sql`select public.google_ai_finalize(p_reservation_id => ${one}::uuid, p_outcome => 'succeeded',
      p_input_tokens => 12, p_output_tokens => 3, p_http_status => 200, p_latency_ms => 40,
      p_cooldown_until_pacific_midnight => false, p_stated_limits => '{901,1000000,NULL,NULL,NULL}'::integer[]) as r`;
    expect(a!.r).toEqual({ ok: true, status: "succeeded", cooldown_until: null });
    expect(await attempt(one)).toMatchObject({ input_tokens: 12, output_tokens: 3, latency_ms: 40 });

    const two = await admit();
    const [b] = await db.sql`select public.google_ai_finalize_cut(p_reservation_id => ${two}::uuid, p_cut_by => 'client',
      p_input_tokens => 8, p_output_tokens => 2) as r`;
    expect(b!.r).toMatchObject({ ok: true, status: "cut" });
    expect(await attempt(two)).toMatchObject({ status: "cut", input_tokens: 8 });

    const three = await admit();
    const [c] = await db.sql`select public.google_ai_finalize_withdrawn(p_reservation_id => ${three}::uuid,
      p_error_message => 'gone again') as r`;
    expect(c!.r).toMatchObject({ ok: true, status: "withdrawn", model: MODEL });
    expect(await attempt(three)).toMatchObject({ status: "withdrawn", http_status: 404, error_code: "NOT_FOUND" });
  });
});
