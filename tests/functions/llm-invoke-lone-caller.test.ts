// A lone caller uses every request the provider has left, over HTTP with the real function as Supabase's
// Edge Runtime runs it (EdgeRuntime.waitUntil defined: a success's finalize runs after the answer),
// PostgreSQL and the OpenAI simulator (its clock held still: one minute window all along):
//   a model row at 6 RPM, 3 of the organization's 6 spent outside the gateway (/__sim/spend), 6 NO_WAIT
//   requests one after another: 3 served, the other 3 refused by the gateway, no 429 from OpenAI;
//   round trips: those 3 successes' finalizes were on the callers' path (none handed to waitUntil), a
//   success with room to spare (gpt-4o-mini at 500 RPM) has its finalize after the answer (one handed).
// Every finalize is slowed in the database (a trigger sleeps in the attempt row's update), so a write
// that runs after its answer lands after the caller's next admission: the rest the provider's last
// request calls for is in place in time only because that finalize is written before the answer
// (attempt/room.ts), and the margin no longer counts the answered call's own caller.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type OpenAISimulator, startOpenAISimulator } from "../../shared/openai-sim/server.ts";
import { BENCH_SERVICE_KEY, serveLlmInvokeAsOnSupabase, waitUntilCounts } from "../../bench/lib/llm-invoke.ts";
import type { ServerProcess } from "../../bench/lib/server-process.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";

const MODEL = "gpt-4.1-mini";
const ORG = "org-lone";
const KEY = "sk-sim-lone";
const RPM = 6;
/** The simulator's clock: still, 20 s into a minute (its fixed window never turns during the test). */
const SIM_NOW = Math.floor(Date.now() / 60_000) * 60_000 + 20_000;

let db: TestDatabase;
let oa: OpenAISimulator;
let fn: ServerProcess;
const output: string[] = [];

beforeAll(async () => {
  oa = await startOpenAISimulator({ now: () => SIM_NOW, organizations: { [ORG]: { keys: [KEY] } } });
  db = await freshDatabase("llm_invoke_lone_caller");
  await db.sql`update public.google_ai_api_keys set is_active = false`;
  await db.sql`
    insert into public.google_ai_api_keys (key_alias, provider, env_var_name, project_id, priority, is_active)
    values ('openai-lone', 'openai', 'OPENAI_LONE_KEY', ${ORG}, 1, true)`;
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
    env: { OPENAI_BASE_URL: oa.url, OPENAI_LONE_KEY: KEY },
    log: output,
  });
}, 120_000);

afterAll(async () => {
  await fn?.close();
  await oa?.close();
  await db?.drop();
});

/** One NO_WAIT request to the function; its status. */
async function ask(model: string, prompt: string): Promise<number> {
  const res = await fetch(fn.url, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${BENCH_SERVICE_KEY}` },
    body: JSON.stringify({ model, prompt, mode: "NO_WAIT", generationConfig: { maxOutputTokens: 20 } }),
  });
  await res.text();
  return res.status;
}

async function sim(path: string, method: string, body: unknown): Promise<unknown> {
  const res = await fetch(`${oa.url}${path}`, { method, headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return await res.json();
}

describe("a lone caller", () => {
  it("6 RPM with 3 spent outside, 6 NO_WAIT one by one: 3 served, 3 refused by the gateway, no 429 from OpenAI", async () => {
    await sim("/__sim/organizations", "PUT", { [ORG]: { keys: [KEY], limits: { [MODEL]: { rpm: RPM, tpm: 200_000 } } } });
    expect(await sim("/__sim/spend", "POST", { organization: ORG, model: MODEL, requests: 3 }))
      .toEqual({ admitted: 3, refused: 0 });
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push(await ask(MODEL, `lone ${i}`));
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

  it("round trips: a success with room to spare is finalized after its answer; the three near the end were not", async () => {
    expect(await ask("gpt-4o-mini", "roomy")).toBe(200);
    const counts = waitUntilCounts(await fn.close());
    // One task handed to waitUntil: gpt-4o-mini's finalize. gpt-4.1-mini's three were awaited before their answers.
    expect(counts).toEqual({ handed: 1, settled: 1, rejected: 0 });
    const rows = await db.sql`select model, status from public.google_ai_attempts where status = 'succeeded' order by created_at`;
    expect(rows.map((r) => r.model)).toEqual([MODEL, MODEL, MODEL, "gpt-4o-mini"]);
  }, 60_000);
});
