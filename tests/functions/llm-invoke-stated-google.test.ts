// A Google 429 that names a quota value below the model row, over HTTP with the real function, PostgreSQL
// and the Google simulator (its clock held still: its minute does not turn): the row at 10 RPM, the
// project's quota at Google 5 (the simulator's gemini-2.5-flash); the sixth call is refused by Google,
// whose QuotaFailure says 5. The model rests as any minute's 429 rests it, and the row is shown above
// Google's 5 (google_ai_stated_limits, the quota route to the service key, the maintenance run's list).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type InvokeStack, startInvokeStack } from "./llm-invoke-helpers.ts";

let s: InvokeStack;
const FLASH = "gemini-2.5-flash";
let simNow = Date.now();

beforeAll(async () => {
  s = await startInvokeStack("llm_invoke_stated_google", {
    keys: [{ alias: "key-stated", project: "proj-stated", priority: 1, simKey: "sim-key-stated" }],
    limits: [{ model: FLASH, rpm: 10, tpm: 10_000_000, rpd: 100_000 }],
    // Google's quota for the project: 5 requests a minute (its other limits out of the way).
    simulator: { now: () => simNow, models: { [FLASH]: { rpm: 5, tpm: 100_000_000, rpd: 1_000_000 } } },
  });
}, 120_000);

afterAll(async () => {
  await s?.close();
});

describe("a Google 429 stating a quota below the row", () => {
  it("rests the model as today, and shows the row above Google's", async () => {
    simNow = Math.floor(Date.now() / 60_000) * 60_000 + 20_000;
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await s.call({ model: FLASH, prompt: `call ${i}`, mode: "NO_WAIT" })).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
    const rests = await s.sql`select quota_group, cause from public.google_ai_cooldowns where model = ${FLASH}`;
    expect(rests).toEqual([{ quota_group: "proj-stated", cause: "minute" }]);
    const [counter] = await s.sql`select to_jsonb(stated_limits) as stated_limits from public.google_ai_usage_counters
                                  where quota_group = 'proj-stated' and model = ${FLASH}`;
    expect(counter!.stated_limits).toEqual([5, null, null, null, null]);
    const rows = await s.sql`select limit_name, row_limit, provider_limit, effective_limit, disagreement
                             from public.google_ai_stated_limits() where model = ${FLASH}`;
    expect(rows).toEqual([{ limit_name: "rpm", row_limit: 10, provider_limit: 5, effective_limit: 10, disagreement: "above" }]);
    const res = await s.raw({
      method: "GET",
      path: "/functions/v1/llm-invoke/v1/quota",
      headers: { authorization: `Bearer ${s.serviceKey}` },
    });
    const flash = (res.body.models as { model: string; limits: unknown; provider_limits: unknown }[])
      .find((m) => m.model === FLASH)!;
    expect(flash.limits).toMatchObject({ rpm: 10 });
    expect(flash.provider_limits).toEqual([expect.objectContaining({
      quota_group: "proj-stated", limit: "rpm", mode: "keep", row: 10, provider: 5, disagreement: "above",
    })]);
  }, 120_000);
});
