// A model past its row's shutdown date over HTTP (the served functions, a real PostgreSQL, the Anthropic
// simulator): with the reservation's clock after 30 November 2026, a request for claude-sonnet-4-5, on
// the native route and through @anthropic-ai/sdk, is served by its successor claude-sonnet-5-5 in the
// same request, and Anthropic is never called for the retired model; the answer names what was asked
// for and why it was passed over. A token that may not use the successor is answered 404
// model_withdrawn naming it, again with no call. The rows are the rows migration's (applied again to the
// test's database, whose template cleared the shutdown dates); the clock is injected into the reservation
// the function calls, as only a test may.
import Anthropic from "@anthropic-ai/sdk";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrationsDir } from "../../shared/db/migrate.ts";
import type { AnthropicSimulator } from "../../shared/anthropic-sim/server.ts";
import { eventually, type InvokeStack, mintToken, startClaudeStack } from "./llm-invoke-helpers.ts";

const RETIRED = "claude-sonnet-4-5-20250929";
const SUCCESSOR = "claude-sonnet-5-5";
const KEY = "sk-ant-sim-shutdown-0123456789";
/** Noon on 1 December 2026, or now when that has passed: the reservation's clock runs this far ahead. */
const AHEAD_MS = Math.max(0, Date.parse("2026-12-01T12:00:00Z") - Date.now());

let s: InvokeStack;
let sim: AnthropicSimulator;

beforeAll(async () => {
  ({ s, sim } = await startClaudeStack("llm_invoke_shutdown", {
    simulator: { organizations: { "org-ant": { keys: [KEY] } } },
    claude: [{ name: "MAIN", secret: KEY, org: "org-ant" }],
  }));
  await s.sql.unsafe(await readFile(path.join(migrationsDir, "20261122000200_rows_and_schedule.sql"), "utf8")).simple();
  // The injected clock: the entry llm-invoke calls asks its clock seam for a time AHEAD_MS later.
  const [{ def }] = await s.sql<{ def: string }[]>`
    select pg_get_functiondef('public.google_ai_reserve_models'::regproc) as def`;
  const ahead = def.replace("google_ai_reserve_models_at(null,",
    `google_ai_reserve_models_at(pg_catalog.clock_timestamp() + interval '${AHEAD_MS} milliseconds',`);
  expect(ahead, "the entry's call of its clock seam was found").not.toBe(def);
  await s.sql.unsafe(ahead);
}, 120_000);

afterAll(async () => {
  await s?.close();
});

const callsFor = (model: string) =>
  sim.stats().received.filter((r) => (r.body as { model?: string }).model === model).length;

describe("claude-sonnet-4-5 after its shutdown date", () => {
  it("is served by its successor in the same request, 0 calls for the retired model", async () => {
    const [row] = await s.sql`select shutdown_date::text as shutdown, successor from public.google_ai_model_limits
                              where model = ${RETIRED}`;
    expect(row).toEqual({ shutdown: "2026-11-30", successor: SUCCESSOR });

    const res = await s.call({ model: "claude-sonnet-4-5", prompt: "hello", mode: "NO_WAIT" });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ model: SUCCESSOR, attempts: 1, text: `sim(${SUCCESSOR}): hello`,
      requested_model: RETIRED, fallback_from: [{ model: RETIRED, limit: "withdrawn", cause: "shut_down" }] });

    // Anthropic's own SDK by base URL: its message names the model that served.
    const client = new Anthropic({ apiKey: s.serviceKey, baseURL: `${s.url}`, maxRetries: 0 });
    const message = await client.messages.create({ model: "claude-sonnet-4-5", max_tokens: 64,
      messages: [{ role: "user", content: "hi sdk" }] });
    expect(message).toMatchObject({ model: SUCCESSOR, content: [{ type: "text", text: `sim(${SUCCESSOR}): hi sdk` }] });

    expect(callsFor(SUCCESSOR)).toBe(2);
    expect(callsFor(RETIRED) + callsFor("claude-sonnet-4-5")).toBe(0);
    const rows = await eventually(async () => {
      const r = await s.sql`select status, model, refusal_cause from public.google_ai_attempts
                            where requested_model in ('claude-sonnet-4-5', ${RETIRED}) order by id`;
      return r.filter((a) => a.status === "succeeded").length === 2 && r;
    });
    expect(rows.map((a) => [a.status, a.model, a.refusal_cause])).toEqual([
      ["refused", RETIRED, "shut_down"], ["succeeded", SUCCESSOR, null],
      ["refused", RETIRED, "shut_down"], ["succeeded", SUCCESSOR, null],
    ]);
  });

  it("a token that may not use the successor: 404 model_withdrawn naming it, no call", async () => {
    const before = sim.stats().received.length;
    const { token, tokenId } = await mintToken(s.sql, "shutdown-old-only", { models: [RETIRED] });
    // Minted on the real clock, used on the reservation's: it lives until then.
    await s.sql`update public.google_ai_tokens set expires_at = '2027-01-01' where id = ${tokenId}::uuid`;
    const res = await s.call({ model: "claude-sonnet-4-5", prompt: "hello" }, { auth: token });
    expect(res.status, JSON.stringify(res.body)).toBe(404);
    expect(res.body).toMatchObject({ error: { code: "model_withdrawn", details: { model: RETIRED, successor: SUCCESSOR } } });
    expect(sim.stats().received.length).toBe(before);
  });
});
