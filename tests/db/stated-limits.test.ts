// The limits a provider states, as finalize notes them on the counter row and the booking of a row that
// follows them counts against them (google_ai_note_stated, google_ai_followed_limits; docs/models.md,
// "Limits as the provider states them"), each step counted exactly:
//   a row at 6 RPM that follows: one answer stating 12 raises nothing, the second does (up to 12 in the
//   minute, the 13th refused); an answer stating 6 lowers it at once, refusing nothing already admitted
//   (those finalize as usual and stay counted);
//   a row that keeps its own: the statements are recorded and shown beside it, the booking stays at the row;
//   a lowering's noting is written only when a figure changes; follow is refused for Google's rows.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { reservation, type ReserveAnswer } from "../support/reserve-answer.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";

let db: TestDatabase;
const FOLLOW = "stated-follow";
const KEEP = "stated-keep";
const ORG = "org-stated";

beforeAll(async () => {
  db = await freshDatabase("stated_limits");
  await db.sql`delete from public.google_ai_api_keys`;
  await db.sql`insert into public.google_ai_api_keys (key_alias, provider, env_var_name, project_id, priority)
               values ('openai-stated', 'openai', 'OPENAI_STATED_KEY', ${ORG}, 1)`;
  await db.sql`update public.google_ai_priority_classes set kept_rpm_percent = null, kept_rpd_percent = null`;
  await db.sql`insert into public.google_ai_model_limits (model, provider, rpm, tpm, provider_limits)
               values (${FOLLOW}, 'openai', 6, 1000000, 'follow'), (${KEEP}, 'openai', 6, 1000000, 'keep')`;
}, 60_000);

afterAll(async () => {
  await db?.drop();
});

async function admit(model: string): Promise<ReserveAnswer & { quota?: { rpm: number; followed?: number[] } }> {
  const [row] = await db.sql<{ r: ReserveAnswer }[]>`select public.google_ai_reserve_models_at(now(),
    jsonb_populate_record(null::public.google_ai_reservation, ${reservation({ models: [model], estimated_tokens: 50,
      caller: "stated" })}::text::jsonb)) as r`;
  return row!.r;
}

/** Admits n, each its reservation id; throws if one is refused. */
async function admitAll(model: string, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const a = await admit(model);
    expect(a.ok, `admission ${i + 1} of ${n}: ${JSON.stringify(a)}`).toBe(true);
    ids.push(a.reservation_id!);
  }
  return ids;
}

/** A success whose answer states `rpm` (and tpm 1,000,000), as llm-invoke sends it. */
async function finalize(id: string, rpm: number | null): Promise<void> {
  const stated = rpm === null ? null : `{${rpm},1000000,NULL,NULL,NULL}`;
  const [{ r }] = await db.sql`select public.google_ai_finalize(${id}::uuid, jsonb_build_object('kind', 'succeeded',
    'input_tokens', 10, 'output_tokens', 10, 'stated_limits', ${stated}::integer[])) as r`;
  expect(r).toMatchObject({ ok: true });
}

async function counter(model: string) {
  // (As jsonb: an integer[]'s NULL elements would come back as NaN.)
  const [row] = await db.sql`select to_jsonb(stated_limits) as stated_limits, to_jsonb(stated_heard) as stated_heard,
                                    stated_at, stated_since, window_requests
                             from public.google_ai_usage_counters where quota_group = ${ORG} and model = ${model}`;
  return row!;
}

describe("a row that follows its provider", () => {
  it("raised from 6 to 12 by the second answer stating 12, lowered to 6 by the first stating 6", async () => {
    const first = await admitAll(FOLLOW, 6);
    expect(await admit(FOLLOW)).toMatchObject({ ok: false, limit: "rpm" });

    // One answer says 12: heard, not applied (nothing applied yet: the row's 6 counts); its TPM, the row's, is.
    await finalize(first[0]!, 12);
    expect(await counter(FOLLOW)).toMatchObject({
      stated_limits: [null, 1000000, null, null, null],
      stated_heard: [12, 1000000, null, null, null],
    });
    expect(await admit(FOLLOW)).toMatchObject({ ok: false, limit: "rpm" });

    // The second agrees: applied. A raise applies to what is booked: 6 more, then the 13th is refused.
    await finalize(first[1]!, 12);
    expect((await counter(FOLLOW)).stated_limits).toEqual([12, 1000000, null, null, null]);
    const more = await admitAll(FOLLOW, 6);
    const refused = await admit(FOLLOW);
    expect(refused).toMatchObject({ ok: false, limit: "rpm" });
    expect((await counter(FOLLOW)).window_requests).toBe(12);

    // An answer says 6: applied at once. Nothing admitted is refused: all of them finalize, still counted.
    await finalize(first[2]!, 6);
    expect((await counter(FOLLOW)).stated_limits).toEqual([6, 1000000, null, null, null]);
    expect(await admit(FOLLOW)).toMatchObject({ ok: false, limit: "rpm" });
    for (const id of [...first.slice(3), ...more]) await finalize(id, 6);
    expect((await counter(FOLLOW)).window_requests).toBe(12);
    expect(await admit(FOLLOW)).toMatchObject({ ok: false, limit: "rpm" });
  });

  it("the booking's quota says the limit it followed; the route's service report shows both", async () => {
    const [{ r }] = await db.sql`select public.google_ai_quota_report(p_caller => 'stated') as r`;
    const model = (r.models as { model: string }[]).find((m) => m.model === FOLLOW) as Record<string, unknown>;
    expect(model.limits).toMatchObject({ rpm: 6 });
    expect(model.provider_limits).toEqual([
      expect.objectContaining({ quota_group: ORG, limit: "rpm", mode: "follow", row: 6, provider: 6, effective: 6 }),
      expect.objectContaining({ quota_group: ORG, limit: "tpm", mode: "follow", row: 1000000, provider: 1000000 }),
    ]);
  });
});

describe("a row that keeps its own limits", () => {
  it("records what the provider states, books at the row, and says the difference", async () => {
    const ids = await admitAll(KEEP, 6);
    await finalize(ids[0]!, 3);
    await finalize(ids[1]!, 3);
    expect((await counter(KEEP)).stated_limits).toEqual([3, 1000000, null, null, null]);
    const answer = await admit(KEEP);
    expect(answer).toMatchObject({ ok: false, limit: "rpm" });
    const rows = await db.sql`select limit_name, row_limit, provider_limit, effective_limit, disagreement
                              from public.google_ai_stated_limits() where model = ${KEEP} order by limit_name`;
    expect(rows).toEqual([
      { limit_name: "rpm", row_limit: 6, provider_limit: 3, effective_limit: 6, disagreement: "above" },
      { limit_name: "tpm", row_limit: 1000000, provider_limit: 1000000, effective_limit: 1000000, disagreement: null },
    ]);
  });

  it("writes the row only when a figure changes (when said: at most once a minute)", async () => {
    const before = await counter(KEEP);
    const [{ xmin: x0 }] = await db.sql`select xmin::text from public.google_ai_usage_counters
                                        where quota_group = ${ORG} and model = ${KEEP}`;
    // Settling a finalize writes the counter row anyway; the noting adds no second version when nothing changed.
    await db.sql`select public.google_ai_note_stated(a, '{3,1000000,NULL,NULL,NULL}'::integer[])
                 from public.google_ai_attempts a where a.model = ${KEEP} limit 1`;
    const [{ xmin: x1 }] = await db.sql`select xmin::text from public.google_ai_usage_counters
                                        where quota_group = ${ORG} and model = ${KEEP}`;
    expect(x1).toBe(x0);
    expect((await counter(KEEP)).stated_at).toEqual(before.stated_at);
    await db.sql`select public.google_ai_note_stated(a, '{2,1000000,NULL,NULL,NULL}'::integer[])
                 from public.google_ai_attempts a where a.model = ${KEEP} limit 1`;
    expect((await counter(KEEP)).stated_limits).toEqual([2, 1000000, null, null, null]);
  });
});

describe("follow is offered only where every answer states the limits", () => {
  it("a Google row refuses it by its constraint", async () => {
    await expect(db.sql`update public.google_ai_model_limits set provider_limits = 'follow'
                        where provider = 'google' and model = (select min(model) from public.google_ai_model_limits
                                                               where provider = 'google')`)
      .rejects.toThrow(/google_ai_model_limits_provider_limits_check/);
    await expect(db.sql`update public.google_ai_model_limits set provider_limits = 'sometimes' where model = ${KEEP}`)
      .rejects.toThrow(/google_ai_model_limits_provider_limits_check/);
  });
});

describe("the metrics", () => {
  it("a following group's limit is the provider's; the provider's figures, and where a row disagrees", async () => {
    // The row says 20; the provider last said 6 for the group the row follows it in.
    await db.sql`update public.google_ai_model_limits set rpm = 20 where model = ${FOLLOW}`;
    try {
      const gauge = async (model: string) => (await db.sql`select value::float8 as value
        from public.google_ai_metric_quota(now()) where family = 'eve_gateway_quota_limit'
          and labels like ${`%model="${model}"%`} and labels like '%window="minute",unit="requests"%'`)
        .map((r) => r.value);
      expect(await gauge(FOLLOW)).toEqual([6]);
      expect(await gauge(KEEP)).toEqual([6]);
      const stated = await db.sql`select family, labels, value::float8 as value from public.google_ai_metric_stated()
                                  where labels like '%limit="rpm"%' order by family, labels`;
      expect(stated).toEqual([
        { family: "eve_gateway_provider_limit", labels: `model="${FOLLOW}",quota_group="${ORG}",limit="rpm",mode="follow"`, value: 6 },
        { family: "eve_gateway_provider_limit", labels: `model="${KEEP}",quota_group="${ORG}",limit="rpm",mode="keep"`, value: 2 },
        {
          family: "eve_gateway_provider_limit_disagreement",
          labels: `model="${KEEP}",quota_group="${ORG}",limit="rpm",disagreement="above"`,
          value: 1,
        },
      ]);
    } finally {
      await db.sql`update public.google_ai_model_limits set rpm = 6 where model = ${FOLLOW}`;
    }
  });
});
