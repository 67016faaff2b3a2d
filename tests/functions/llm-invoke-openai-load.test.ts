// gpt-4o under load, over HTTP with the real function, PostgreSQL and the OpenAI simulator counting as
// OpenAI does (per organization and model, input + max_tokens on arrival, in calendar minutes):
//   8 processes × 40 requests at its RPM: the gateway admits no more than the organization's limit in
//   any window (OpenAI answers no 429) and every request is served, the last ones after waiting.
//   Another client spends a third of the organization outside the gateway: OpenAI's x-ratelimit-*
//   on each answer rest the model before OpenAI refuses (at most one 429 per minute), and no caller
//   loses its request.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type OpenAISimulator, startOpenAISimulator } from "../../shared/openai-sim/server.ts";
import { type InvokeStack, startInvokeStack } from "./llm-invoke-helpers.ts";

let s: InvokeStack;
let oa: OpenAISimulator;
const RPM = 200;

beforeAll(async () => {
  oa = await startOpenAISimulator({
    settle: "usage",
    organizations: { "org-load": { keys: ["sk-sim-load"], limits: { "gpt-4o": { rpm: RPM, tpm: 30_000 } } } },
  });
  s = await startInvokeStack("llm_invoke_openai_load", {
    keys: [{ alias: "google-main", project: "proj-g", priority: 1, simKey: "sim-key-google" }],
    env: { OPENAI_BASE_URL: oa.url, OPENAI_LOAD_KEY: "sk-sim-load" },
  });
  await s.sql`
    insert into public.google_ai_api_keys (key_alias, provider, env_var_name, project_id, priority, is_active)
    values ('openai-load', 'openai', 'OPENAI_LOAD_KEY', 'org-load', 1, true)`;
  await s.sql`
    insert into public.google_ai_model_limits (model, provider, rpm, tpm, rpd, booked_output_tokens,
      supports_system_instruction, supports_json_mode, supports_tools, supports_images, is_active)
    values ('gpt-4o', 'openai', ${RPM}, 30000, null, 4096, true, true, true, true, true)
    on conflict (model) do update set provider = excluded.provider, rpm = excluded.rpm, tpm = excluded.tpm,
      rpd = null, booked_output_tokens = excluded.booked_output_tokens, spread_burst = null, is_active = true`;
}, 120_000);
afterAll(async () => {
  await s?.close();
  await oa?.close();
});
beforeEach(async () => {
  await s.reset();
  await s.sql`delete from public.google_ai_attempts`;
  oa.reset();
});

/** `workers` callers, each sending `each` requests one after another; every answer's status. */
async function load(workers: number, each: number, tag: string): Promise<number[]> {
  const statuses: number[] = [];
  await Promise.all(Array.from({ length: workers }, async (_, w) => {
    for (let i = 0; i < each; i++) {
      const res = await s.call({
        model: "gpt-4o",
        prompt: `${tag} ${w}-${i}`,
        generationConfig: { maxOutputTokens: 40 },
        max_wait_ms: 65_000,
      });
      statuses.push(res.status);
    }
  }));
  return statuses;
}

/** OpenAI's answers per calendar minute: [the minute, [requests it admitted, 429s]]. */
function perMinute(): Array<[number, [number, number]]> {
  const minutes = new Map<number, [number, number]>();
  for (const r of oa.stats().recent) {
    const m = Math.floor(r.at / 60_000);
    const [ok, refused] = minutes.get(m) ?? [0, 0];
    minutes.set(m, r.status === 429 ? [ok, refused + 1] : [ok + 1, refused]);
  }
  return [...minutes.entries()];
}

describe("gpt-4o under load", () => {
  it("8 processes × 40 requests at RPM 200: every one served, no minute over the limit, no 429 from OpenAI", async () => {
    const statuses = await load(8, 40, "load");
    expect(statuses.filter((x) => x !== 200)).toEqual([]);
    const minutes = perMinute();
    expect(minutes.map(([, [, refused]]) => refused)).toEqual(minutes.map(() => 0));
    for (const [, [admitted]] of minutes) expect(admitted).toBeLessThanOrEqual(RPM);
    expect(oa.stats().total.received).toBe(320);
  }, 180_000);

  it("another client spends a third of the organization: at most one 429 a minute, no caller loses its request", async () => {
    // The other client spends a third of each calendar minute, at its start (and now, for this one): a
    // timer set for each minute's first millisecond, not a poll, so the spend lands with the minute and
    // the gateway's requests do not see a new minute's room the other client is about to take.
    const third = Math.floor(RPM / 3);
    let other: ReturnType<typeof setTimeout> | undefined;
    let spentIn = -1;
    const spend = () => {
      // (a timer that fires a millisecond early finds the old minute: it only sets the next one)
      const minute = Math.floor(Date.now() / 60_000);
      if (minute !== spentIn) oa.spend({ organization: "org-load", model: "gpt-4o", requests: third });
      spentIn = minute;
      other = setTimeout(spend, 60_000 - (Date.now() % 60_000));
    };
    spend();
    const statuses = await load(8, 25, "shared").finally(() => clearTimeout(other));
    expect(statuses.filter((x) => x !== 200)).toEqual([]);
    // On failure, the minute's story: each of OpenAI's answers as ms into the minute and its status.
    const story = (m: number) =>
      oa.stats().recent.filter((r) => Math.floor(r.at / 60_000) === m).map((r) => `${r.at % 60_000}:${r.status}`);
    for (const [m, [, refused]] of perMinute()) {
      expect(refused, `minute ${m}: ${story(m).join(" ")}`).toBeLessThanOrEqual(1);
    }
    const [{ rests }] = await s.sql`
      select count(*)::int as rests from public.google_ai_attempts where error_code = 'rate_limit_exceeded'`;
    expect(rests).toBeLessThanOrEqual(perMinute().length);
  }, 180_000);
});
