// A request's cost does not grow with the log: with a million older attempt rows of the same quota
// groups and models (what 30 days of retention keeps), every kind of request — both providers, whole and
// streamed, refused, failed, cut, a fallback, a WAIT in line, WAIT refused on a cooldown, a full window
// and a full TPM, a replay, the quota read — runs without one sequential scan of a relation that grows
// with the log. On two logs: the test's own spread of groups and models, and the owner's, where one
// organisation's gpt-4o is nearly every row (the entry functions' generic plans are planned on those
// statistics: a quota group or a model then selects the whole table). PostgreSQL's own statistics count
// the scans: each gateway connection flushes its counts when it ends, so the test ends them before it reads.
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type OpenAISimulator, startOpenAISimulator } from "../../shared/openai-sim/server.ts";
import { type InvokeStack, startInvokeStack } from "./llm-invoke-helpers.ts";

const GEMMA = "gemma-3-27b-it";
const FLASH = "gemini-2.5-flash";
const GPT = "gpt-4o";
const LOG_ROWS = 1_000_000;
/** The relations that grow with the traffic (the log and what each answer leaves); the rest are bounded. */
const GROWING = ["google_ai_attempts", "google_ai_responses", "token_usage"];
const ORG = "org-sim-a";
const PROJECT = "proj-scale";

/** How the older log's rows fall on the groups, models and outcomes: a SQL expression of g, the row's number. */
interface Shape {
  name: string;
  /** The row's model. */
  model: string;
  /** The row's status: succeeded, refused (no quota group) or upstream_error. */
  status: string;
  /** Checked on the log written: the most common quota group's and model's share of its rows, at least. */
  dominant: number;
}

const SHAPES: Shape[] = [
  {
    name: "spread over the test's groups and models",
    model: `(array['${GPT}', '${GEMMA}', '${FLASH}'])[1 + g % 3]`,
    status: "case when g % 10 < 8 then 'succeeded' when g % 10 = 8 then 'refused' else 'upstream_error' end",
    dominant: 0,
  },
  {
    // The owner's month: the bot's gpt-4o of one organisation, nearly every row succeeded. What the
    // statistics then say of a quota group or a model is "the whole table" (a few rows of another in a
    // million are not in ANALYZE's sample); the live traffic beside it is the only other group and model.
    name: "the owner's: one organisation's gpt-4o is 99.99% of it",
    model: `case when g % 200000 = 0 then '${GEMMA}' else '${GPT}' end`,
    status: "case when g % 100000 = 1 then 'refused' when g % 100000 = 2 then 'upstream_error' else 'succeeded' end",
    dominant: 0.9999,
  },
];

describe.each(SHAPES)("a request's statements with a million older attempt rows, $name", (shape) => {
  let s: InvokeStack;
  let oa: OpenAISimulator;

  beforeAll(async () => {
    oa = await startOpenAISimulator({ settle: "usage" });
    s = await startInvokeStack(`llm_invoke_log_scale_${shape.dominant ? "owner" : "spread"}`, {
      keys: [{ alias: "scale-google", project: PROJECT, priority: 1, simKey: "sim-key-scale" }],
      env: { OPENAI_BASE_URL: oa.url, OPENAI_TEST_KEY: "sk-sim-a1" },
    });
    await s.sql`
      insert into public.google_ai_api_keys (key_alias, provider, env_var_name, project_id, priority, is_active)
      values ('scale-openai', 'openai', 'OPENAI_TEST_KEY', ${ORG}, 1, true)`;
    await s.setLimit({ model: GEMMA, rpm: 30, tpm: 1_000_000, rpd: 14_400 });
    await s.setLimit({ model: FLASH, rpm: 100, tpm: 1_000_000, rpd: 10_000 });
    await fillLog(s, shape);
  }, 300_000);

  afterAll(async () => {
    await s?.close();
    await oa?.close();
  });

  it("no kind of request scans a relation that grows with the log", async () => {
    await everyKindOfRequest(s, oa);
  }, 300_000);
});

/** A month of older traffic on the test's own groups, models and caller: the worst case for every index. */
async function fillLog(s: InvokeStack, shape: Shape): Promise<void> {
  const caller = "service";
  // Rows written as a restore would: no triggers (the holder's claim and the commit checks are the live path's).
  await s.sql.begin(async (tx) => {
    await tx`set local session_replication_role = replica`;
    await tx`
      insert into public.google_ai_attempts (created_at, admitted_at, finished_at, status, request_id, caller, model,
        requested_model, quota_group, key_alias, priority_class, estimated_tokens, input_tokens, output_tokens,
        http_status, latency_ms, limit_hit, refusal_cause)
      select at, case when status <> 'refused' then at end, at, status, 'old-' || g, ${caller}, model, model,
             case when status = 'refused' then null when model = ${GPT} then ${ORG} else ${PROJECT} end,
             case when status = 'refused' then null when model = ${GPT} then 'scale-openai' else 'scale-google' end,
             'interactive', 120, 100, 40, case when status = 'succeeded' then 200 end, 500,
             case when status = 'refused' then 'rpm' end, case when status = 'refused' then 'window_full' end
      from (select g, now() - interval '30 days' + interval '30 days' * (g::float8 / ${LOG_ROWS}) - interval '10 minutes' as at,
                   ${tx.unsafe(shape.model)} as model, ${tx.unsafe(shape.status)} as status
            from generate_series(1, ${LOG_ROWS}) g) x`;
    await tx`
      insert into public.google_ai_responses (caller, request_id, status, model, response, created_at)
      select ${caller}, 'old-' || g, 'done', ${GEMMA}, '{"text":"old"}', now() - interval '20 hours' + g * interval '1 second'
      from generate_series(1, 50000) g`;
    await tx`
      insert into public.token_usage (model, prompt_tokens, completion_tokens, total_tokens, request_id, at)
      select ${GPT}, 100, 40, 140, 'old-' || g, now() - interval '30 days' + g * interval '2 seconds'
      from generate_series(1, 200000) g`;
  });
  await s.sql`analyze public.google_ai_attempts, public.google_ai_responses, public.token_usage`;
  // The statistics the generic plans are made on see the shape (the scan here is before the test's counts).
  const [share] = await s.sql<{ group_share: number; model_share: number }[]>`
    select (select count(*) from public.google_ai_attempts where quota_group = ${ORG})::float8 / count(*) as group_share,
           (select count(*) from public.google_ai_attempts where model = ${GPT})::float8 / count(*) as model_share
    from public.google_ai_attempts`;
  expect(share!.group_share).toBeGreaterThanOrEqual(shape.dominant);
  expect(share!.model_share).toBeGreaterThanOrEqual(shape.dominant);
}

interface Reads {
  /** Sequential scans of the relation. */
  scans: number;
  /** Rows read from it, by any scan. */
  rows: number;
}

/** How each growing relation has been read so far, every backend's counts flushed first (ending them flushes them). */
async function reads(s: InvokeStack): Promise<Record<string, Reads>> {
  await s.sql`
    select pg_terminate_backend(pid) from pg_stat_activity
    where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'`;
  await expect.poll(async () => {
    const [{ n }] = await s.sql<{ n: number }[]>`
      select count(*)::int as n from pg_stat_activity
      where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'`;
    return n;
  }, { timeout: 10_000 }).toBe(0);
  await s.sql`select pg_stat_force_next_flush()`;
  const rows = await s.sql.begin(async (tx) => {
    await tx`set local stats_fetch_consistency = none`;
    return tx<{ relname: string; scans: number; rows: number }[]>`
      select relname, seq_scan::int as scans, (seq_tup_read + coalesce(idx_tup_fetch, 0))::int as rows
      from pg_stat_user_tables where schemaname = 'public' and relname = any(${GROWING})`;
  });
  return Object.fromEntries(rows.map((r) => [r.relname, { scans: r.scans, rows: r.rows }]));
}

function openai(s: InvokeStack): OpenAI {
  return new OpenAI({ baseURL: `${s.url}/v1`, apiKey: s.serviceKey, maxRetries: 0 });
}

async function streamText(s: InvokeStack, body: Record<string, unknown>): Promise<string> {
  const res = await fetch(s.url, {
    method: "POST",
    headers: { authorization: `Bearer ${s.serviceKey}`, "content-type": "application/json" },
    body: JSON.stringify({ ...body, stream: true }),
  });
  expect(res.status).toBe(200);
  return await res.text();
}

/** Every kind of request once (both providers; served, failed, cut, fallen back, waited, refused), then the counts. */
async function everyKindOfRequest(s: InvokeStack, oa: OpenAISimulator): Promise<void> {
  const before = await reads(s);

  // Served, both providers, whole and streamed, native and OpenAI's route.
  expect((await s.call({ model: GEMMA, prompt: "gemma whole" })).status).toBe(200);
  expect((await s.call({ model: GPT, prompt: "gpt whole", generationConfig: { maxOutputTokens: 50 } })).status).toBe(200);
  const chat = await openai(s).chat.completions.create({ model: GPT, messages: [{ role: "user", content: "sdk" }], max_tokens: 50 });
  expect(chat.choices[0]!.message.content).toContain("sdk");
  let streamed = "";
  for await (const chunk of await openai(s).chat.completions.create({
    model: GPT, messages: [{ role: "user", content: "stream" }], stream: true, stream_options: { include_usage: true },
  })) streamed += chunk.choices[0]?.delta.content ?? "";
  expect(streamed).toContain("stream");
  expect(await streamText(s, { model: GEMMA, prompt: "gemma stream" })).toContain("done");

  // A replay of a named request, and the quota route.
  expect((await s.call({ model: GPT, prompt: "named", request_id: "scale-named" })).status).toBe(200);
  const replay = await s.call({ model: GPT, prompt: "named", request_id: "scale-named" });
  expect(replay.body.replayed).toBe(true);
  expect((await s.raw({ method: "GET", path: "/functions/v1/llm-invoke/v1/quota", headers: { authorization: `Bearer ${s.serviceKey}` } })).status).toBe(200);

  // Failed: a provider's 400, a 5xx answered by the chain's next model (another provider), a cut stream.
  oa.addFault({ kind: "bad_request", count: 1 });
  expect((await s.call({ model: GPT, prompt: "rejected" })).status).toBe(400);
  oa.addFault({ kind: "http503", count: 3 });
  const fell = await s.call({ model: GPT, prompt: "fall back", fallback_models: [FLASH] });
  expect(fell.status, fell.text).toBe(200);
  expect(fell.body.model).toBe(FLASH);
  oa.clearFaults();
  s.sim.addFault({ kind: "cut_stream", afterChunks: 2, count: 1 });
  expect(await streamText(s, { model: FLASH, prompt: "cut" })).toContain("error");

  // A WAIT that waits its turn in line (Google asked the group to rest 2 s) and is served; then WAIT
  // refused on a cooldown longer than its wait.
  s.sim.addFault({ kind: "rate_limited", retryDelay: "2s", count: 1 });
  const waited = await s.call({ model: GEMMA, prompt: "wait", mode: "WAIT", max_wait_ms: 30_000, request_id: "scale-wait" });
  expect(waited.status, waited.text).toBe(200);
  s.sim.addFault({ kind: "rate_limited", retryDelay: "50s", count: 1 });
  expect((await s.call({ model: GEMMA, prompt: "cooled", mode: "NO_WAIT" })).status).toBe(429);
  const cooled = await s.call({ model: GEMMA, prompt: "cooldown wait", mode: "WAIT", max_wait_ms: 1_000 });
  expect([cooled.status, cooled.body.limit], cooled.text).toEqual([429, "cooldown"]);

  // A full window, both providers: refused at once (NO_WAIT), and a WAIT whose turn lies beyond its
  // wait (its turn is counted first: the queue's reading of the window).
  await s.setLimit({ model: GEMMA, rpm: 2, tpm: 1_000_000, rpd: 14_400 });
  await s.setLimit({ model: GPT, rpm: 1, tpm: 1_000_000 });
  await s.reset();
  const filled = await Promise.all([1, 2].map((i) => s.call({ model: GEMMA, prompt: `fill ${i}` })));
  expect(filled.map((r) => r.status)).toEqual([200, 200]);
  expect((await s.call({ model: GPT, prompt: "fill gpt" })).status).toBe(200);
  const refused = await s.call({ model: GEMMA, prompt: "no wait", mode: "NO_WAIT" });
  expect([refused.status, refused.body.limit]).toEqual([429, "rpm"]);
  for (const model of [GEMMA, GPT]) {
    const beyond = await s.call({ model, prompt: "turn beyond the wait", mode: "WAIT", max_wait_ms: 2_000 });
    expect([beyond.status, beyond.body.limit], beyond.text).toEqual([429, "rpm"]);
  }

  // A full TPM window (the refusal asks whether admissions still in flight may give tokens back).
  await s.setLimit({ model: GEMMA, rpm: null, tpm: 40, rpd: 14_400 });
  await s.reset();
  let tpm = await s.call({ model: GEMMA, prompt: "twenty bytes of text", mode: "NO_WAIT" });
  for (let i = 0; i < 10 && tpm.status === 200; i++) {
    tpm = await s.call({ model: GEMMA, prompt: "twenty bytes of text", mode: "NO_WAIT" });
  }
  expect([tpm.status, tpm.body.limit], tpm.text).toEqual([429, "tpm"]);
  const tpmWait = await s.call({ model: GEMMA, prompt: "twenty bytes of text", mode: "WAIT", max_wait_ms: 1_000 });
  expect(tpmWait.status, tpmWait.text).toBe(429);

  const after = await reads(s);
  const [{ written }] = await s.sql<{ written: number }[]>`
    select count(*)::int as written from public.google_ai_attempts where request_id is null or request_id not like 'old-%'`;
  // No sequential scan; and what the requests read is of their own rows and their window's, never the
  // older log: a few rows per row they wrote (finalize's count of the calls in flight read 1.2 million
  // here when the clock in its statement kept the window's index from bounding it).
  for (const t of GROWING) {
    const scans = after[t]!.scans - before[t]!.scans;
    const rows = after[t]!.rows - before[t]!.rows;
    expect({ relation: t, scans }, `${t}: ${rows} rows read by ${written} requests' attempts`).toEqual({ relation: t, scans: 0 });
    expect(rows, `${t}: rows read by ${written} requests' attempts`).toBeLessThanOrEqual(10 * written);
  }

  const statuses = await s.sql<{ status: string }[]>`
    select distinct status from public.google_ai_attempts where request_id is null or request_id not like 'old-%'`;
  expect(statuses.map((r) => r.status).sort()).toEqual(
    expect.arrayContaining(["cut", "refused", "succeeded", "upstream_error"]),
  );
}
