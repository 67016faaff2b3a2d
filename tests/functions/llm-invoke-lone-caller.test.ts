// A lone caller uses every request the provider has left, over HTTP with the real function as Supabase's
// Edge Runtime runs it (EdgeRuntime.waitUntil defined: a success's finalize runs after the answer),
// PostgreSQL and the OpenAI and Anthropic simulators (their clocks held still within a test):
//   a model row at 6 RPM, 3 of the organization's 6 spent outside the gateway (/__sim/spend), 6 NO_WAIT
//   requests one after another (every other one streamed: the second's last event waits for its
//   finalize): 3 served, the other 3 refused by the gateway, no 429 from OpenAI;
//   the same at Anthropic (its buckets: a request bucket of 6 at RPM 6, 3 taken by calls outside the
//   gateway, the simulator's clock still so nothing refills): 3 served, 3 refused, no 429 from Anthropic;
//   round trips: OpenAI's 3 successes' finalizes and Claude's last were on the callers' path (each one CALL
//   of google_ai_finalize_call: committed, then flushed), a success with room to spare (gpt-4o-mini at
//   500 RPM, Claude's first two) has its finalize after the answer.
// Every finalize is slowed in the database (a trigger sleeps in the attempt row's update), so a write
// that runs after its answer lands after the caller's next admission: the rest the provider's last
// request calls for is in place in time only because that finalize is written before the answer
// (attempt/room.ts), and the margin no longer counts the answered call's own caller. (Without that
// write, on 4da7385 or with the margin change alone, OpenAI's case serves 2, or sends a 4th OpenAI
// refuses, by the finalizes' timing; Anthropic's sends a 4th Anthropic refuses.)
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type OpenAISimulator, startOpenAISimulator } from "../../shared/openai-sim/server.ts";
import { type AnthropicSimulator, startAnthropicSimulator } from "../../shared/anthropic-sim/server.ts";
import { BENCH_SERVICE_KEY, serveLlmInvokeAsOnSupabase, waitUntilCounts } from "../../bench/lib/llm-invoke.ts";
import type { ServerProcess } from "../../bench/lib/server-process.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";

const MODEL = "gpt-4.1-mini";
const ORG = "org-lone";
const KEY = "sk-sim-lone";
const RPM = 6;
/**
 * The simulators' clocks, held still within a test: OpenAI's 20 s into a minute (its fixed window does
 * not turn, its reset is 40 s away), Anthropic's at the test's start (its buckets do not refill).
 */
let oaNow = Date.now();
let antNow = Date.now();

let db: TestDatabase;
let oa: OpenAISimulator;
let ant: AnthropicSimulator;
const CLAUDE = "claude-sonnet-4-5-20250929";
const ANT_ORG = "org-ant-lone";
const ANT_KEY = "sk-ant-sim-lone-0123456789";
let fn: ServerProcess;
const output: string[] = [];

beforeAll(async () => {
  oa = await startOpenAISimulator({ now: () => oaNow, organizations: { [ORG]: { keys: [KEY] } } });
  ant = await startAnthropicSimulator({
    now: () => antNow,
    organizations: { [ANT_ORG]: { keys: [ANT_KEY], limits: { "sonnet-4": { rpm: RPM, itpm: 10_000_000, otpm: 10_000_000 } } } },
  });
  db = await freshDatabase("llm_invoke_lone_caller");
  // Counted by PostgreSQL itself: the function's connections track every function's and procedure's calls.
  await db.sql.unsafe(`alter database "${db.name}" set track_functions = 'all'`);
  await db.sql`update public.google_ai_api_keys set is_active = false`;
  await db.sql`
    insert into public.google_ai_api_keys (key_alias, provider, env_var_name, project_id, priority, is_active)
    values ('openai-lone', 'openai', 'OPENAI_LONE_KEY', ${ORG}, 1, true),
           ('claude-lone', 'anthropic', 'ANTHROPIC_LONE_KEY', ${ANT_ORG}, 1, true)`;
  await db.sql`update public.google_ai_model_limits set rpm = ${RPM}, itpm = 10000000, otpm = 10000000 where model = ${CLAUDE}`;
  await db.sql`
    insert into public.google_ai_model_limits (model, provider, rpm, tpm, rpd, booked_output_tokens,
      supports_system_instruction, supports_json_mode, supports_tools, supports_images, is_active)
    values (${MODEL}, 'openai', ${RPM}, 200000, null, 4096, true, true, true, true, true)
    on conflict (model) do update set provider = excluded.provider, rpm = excluded.rpm, tpm = excluded.tpm,
      rpd = null, booked_output_tokens = excluded.booked_output_tokens, is_active = true`;
  await db.sql`update public.google_ai_model_limits set spread_burst = null`;
  // Every finalize slowed: one written after its answer lands after the caller's next admission.
  await db.sql`create function public.test_slow_finalize() returns trigger language plpgsql as $$
    begin perform pg_sleep(0.4); return new; end $$`;
  await db.sql`create trigger test_slow_finalize before update of status on public.google_ai_attempts
    for each row when (old.status = 'reserved' and new.status <> 'reserved') execute function public.test_slow_finalize()`;
  fn = await serveLlmInvokeAsOnSupabase({
    dbUrl: db.url,
    simUrl: oa.url,
    env: { OPENAI_BASE_URL: oa.url, OPENAI_LONE_KEY: KEY, ANTHROPIC_BASE_URL: ant.url, ANTHROPIC_LONE_KEY: ANT_KEY },
    log: output,
  });
}, 120_000);

afterAll(async () => {
  await fn?.close();
  await oa?.close();
  await ant?.close();
  await db?.drop();
});

/** One NO_WAIT request to the function (streamed: each odd one); its status. A stream served ends whole. */
async function ask(model: string, prompt: string, stream = false): Promise<number> {
  const res = await fetch(fn.url, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${BENCH_SERVICE_KEY}` },
    body: JSON.stringify({ model, prompt, stream, mode: "NO_WAIT", generationConfig: { maxOutputTokens: 20 } }),
  });
  const text = await res.text();
  if (stream && res.status === 200) expect(text).toMatch(/"type":"done"/);
  return res.status;
}

/** The model's attempt rows' statuses in order, once none is still reserved (a finalize after its answer lands late). */
async function settled(model: string): Promise<string[]> {
  for (let tries = 0; ; tries++) {
    const rows = await db.sql`select status from public.google_ai_attempts where model = ${model} order by created_at`;
    const statuses = rows.map((r) => r.status as string);
    if (!statuses.includes("reserved") || tries === 100) return statuses;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function sim(path: string, method: string, body: unknown): Promise<unknown> {
  const res = await fetch(`${oa.url}${path}`, { method, headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return await res.json();
}

describe("a lone caller", () => {
  it("6 RPM with 3 spent outside, 6 NO_WAIT one by one: 3 served, 3 refused by the gateway, no 429 from OpenAI", async () => {
    oaNow = Math.floor(Date.now() / 60_000) * 60_000 + 20_000;
    await sim("/__sim/organizations", "PUT", { [ORG]: { keys: [KEY], limits: { [MODEL]: { rpm: RPM, tpm: 200_000 } } } });
    expect(await sim("/__sim/spend", "POST", { organization: ORG, model: MODEL, requests: 3 }))
      .toEqual({ admitted: 3, refused: 0 });
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push(await ask(MODEL, `lone ${i}`, i % 2 === 1));
    const calls = oa.stats().recent.filter((r) => r.method === "chat.completions");
    expect(statuses, output.slice(-10).join("\n")).toEqual([200, 200, 200, 429, 429, 429]);
    expect(calls.map((r) => r.status)).toEqual([200, 200, 200]);
    // The rest is the provider's room, written by the third call before its answer.
    const rests = await db.sql`select reason from public.google_ai_cooldowns where model = ${MODEL}`;
    expect(rests.map((r) => r.reason)).toEqual(["provider_room"]);
    const rows = await db.sql`
      select status, refusal_cause from public.google_ai_attempts where model = ${MODEL} order by created_at`;
    expect(rows.map((r) => `${r.status} ${r.refusal_cause ?? ""}`.trim())).toEqual([
      "succeeded", "succeeded", "succeeded", "refused upstream_cooldown", "refused upstream_cooldown", "refused upstream_cooldown",
    ]);
  }, 120_000);

  it("Anthropic: a request bucket of 6 with 3 taken outside, 6 NO_WAIT one by one: 3 served, 3 refused by the gateway, no 429 from Anthropic", async () => {
    antNow = Date.now();
    for (let i = 0; i < 3; i++) {
      const outside = await fetch(`${ant.url}/v1/messages`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": ANT_KEY, "anthropic-version": "2023-06-01" },
        body: JSON.stringify({ model: CLAUDE, max_tokens: 20, messages: [{ role: "user", content: `outside ${i}` }] }),
      });
      expect(outside.status).toBe(200);
      await outside.text();
    }
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push(await ask("claude-sonnet-4-5", `lone ${i}`, i % 2 === 1));
    expect(statuses, output.slice(-10).join("\n")).toEqual([200, 200, 200, 429, 429, 429]);
    // The 3 outside and the gateway's 3, all answered.
    const calls = ant.stats().recent.filter((r) => r.method === "messages");
    expect(calls.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    // Claude's first two were finalized after their answers (waitUntil, each slowed 0.4 s): read once they land.
    const rows = await settled(CLAUDE);
    expect(rows).toEqual(["succeeded", "succeeded", "succeeded", "refused", "refused", "refused"]);
  }, 120_000);

  it("round trips: a success with room to spare is finalized after its answer; the three near the end were not", async () => {
    expect(await ask("gpt-4o-mini", "roomy")).toBe(200);
    const counts = waitUntilCounts(await fn.close());
    // Handed to waitUntil: gpt-4o-mini's finalize, and Claude's first two (its buckets still held the next
    // request). gpt-4.1-mini's three and Claude's third (its word rested the model) were awaited before
    // their answers.
    expect(counts).toEqual({ handed: 3, settled: 3, rejected: 0 });
    // Every success is one CALL of google_ai_finalize_call (its flush after the counter row's lock is
    // gone), the four the answers waited for and the three after theirs alike (the counts flushed when
    // the connections end).
    const calls = async () =>
      Object.fromEntries((await db.sql`select funcname, calls::int as calls from pg_stat_user_functions
        where funcname in ('google_ai_finalize_call', 'google_ai_finalize_calls', 'google_ai_write_attempts')`)
        .map((r) => [r.funcname as string, r.calls as number]));
    await expect.poll(calls, { timeout: 15_000, interval: 200 })
      .toEqual({ google_ai_finalize_call: 7, google_ai_finalize_calls: 7, google_ai_write_attempts: 7 });
    const rows = await db.sql`select model, status from public.google_ai_attempts where status = 'succeeded' order by created_at`;
    expect(rows.map((r) => r.model)).toEqual([MODEL, MODEL, MODEL, CLAUDE, CLAUDE, CLAUDE, "gpt-4o-mini"]);
  }, 60_000);
});
