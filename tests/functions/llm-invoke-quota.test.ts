// Quota you can see, over HTTP with the real function, PostgreSQL and the simulator: every answer
// carries the x-ratelimit-* headers of the quota group it was served by (a refusal: of its best
// group, the reset equal to its retry time), they agree with the counters and with the quota route;
// a token sees only its own models and budgets, a service caller its label's daily budget (and the
// refusal agrees); the route needs a credential and is the only GET.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { parseResetDuration } from "../../supabase/functions/llm-invoke/http/quota-headers.ts";
import { type CallResult, type InvokeStack, mintToken, startInvokeStack, windowFreesAt } from "./llm-invoke-helpers.ts";

let s: InvokeStack;
const FLASH = "gemini-2.5-flash";
const GEMMA = "gemma-3-27b-it";

beforeAll(async () => {
  s = await startInvokeStack("llm_invoke_quota", {
    keys: [{ alias: "quota-key", project: "proj-quota", priority: 1, simKey: "sim-key-quota" }],
  });
});

afterAll(async () => {
  await s?.close();
});

beforeEach(async () => {
  await s.reset();
  await s.setLimit({ model: FLASH, rpm: 5, tpm: 250_000, rpd: 20 });
});

interface ModelQuota {
  model: string;
  provider: string;
  limits: { rpm: number | null; tpm: number | null; rpd: number | null };
  quota_groups: number;
  minute: { requests_left: number | null; requests_reset_ms: number | null; tokens_left: number | null };
  day: { requests_left: number | null; reset_ms: number | null };
  queue: Record<string, number>;
}

function quota(auth: string | null = s.serviceKey, path = "/functions/v1/llm-invoke/v1/quota",
  headers: Record<string, string> = {}): Promise<CallResult> {
  return s.raw({ method: "GET", path, headers: auth === null ? headers : { ...headers, authorization: `Bearer ${auth}` } });
}

/** The quota route as a service caller that names itself (x-caller), as its generations do. */
const quotaAs = (caller: string) => quota(s.serviceKey, undefined, { "x-caller": caller });

function modelOf(res: CallResult, model: string): ModelQuota {
  const found = (res.body.models as ModelQuota[]).find((m) => m.model === model);
  if (found === undefined) throw new Error(`${model} is not in the report`);
  return found;
}

const header = (res: CallResult, name: string) => res.headers.get(`x-ratelimit-${name}`);
const resetMs = (res: CallResult, name: string) => parseResetDuration(header(res, `reset-${name}`) ?? "");

describe("the rate-limit headers", () => {
  it("RPM 5: after 2 admissions, 3 requests left in the headers and in the quota route; tokens and day as counted", async () => {
    const first = await s.call({ model: FLASH, prompt: "first", mode: "NO_WAIT", request_id: "q-1" });
    const second = await s.call({ model: FLASH, prompt: "second", mode: "NO_WAIT", request_id: "q-2" });
    expect([first.status, second.status]).toEqual([200, 200]);
    expect(header(first, "remaining-requests")).toBe("4");
    expect(header(second, "limit-requests")).toBe("5");
    expect(header(second, "remaining-requests")).toBe("3");
    expect(header(second, "limit-requests-day")).toBe("20");
    expect(header(second, "remaining-requests-day")).toBe("18");
    expect(header(second, "limit-tokens")).toBe("250000");
    // As of the second admission: the first settled at Google's count, the second booked on its estimate.
    const attempts = await s.sql<{ request_id: string; input_tokens: number | null; estimated_tokens: number }[]>`
      select request_id, input_tokens, estimated_tokens from public.google_ai_attempts
      where request_id in ('q-1', 'q-2') order by request_id`;
    const booked = attempts[0]!.input_tokens! + attempts[1]!.estimated_tokens;
    expect(header(second, "remaining-tokens")).toBe(String(250_000 - booked));

    // A request comes back when the first admission leaves the sliding window (61 s after it), tokens
    // when the last admission of its second does.
    const frees = await windowFreesAt(s.sql, FLASH);
    const now = Date.now();
    expect(Math.abs(resetMs(second, "requests")! - (frees.requests.getTime() - now))).toBeLessThan(2_000);
    // (Each rounded up to the millisecond on its own.)
    expect(Math.abs(resetMs(second, "tokens")! - resetMs(second, "requests")!
      - (frees.tokens.getTime() - frees.requests.getTime()))).toBeLessThanOrEqual(2);
    // The day resets at the Pacific midnight plus its guard.
    const [{ day }] = await s.sql<{ day: number }[]>`
      select (extract(epoch from public.google_ai_pacific_midnight_after(now()) + interval '5 seconds' - now()) * 1000)::bigint as day`;
    expect(Math.abs(resetMs(second, "requests-day")! - Number(day))).toBeLessThan(2_000);

    const report = await quota();
    expect(report.status).toBe(200);
    expect(report.headers.get("cache-control")).toBe("no-store");
    const flash = modelOf(report, FLASH);
    expect(flash).toMatchObject({
      limits: { rpm: 5, tpm: 250_000, rpd: 20 },
      quota_groups: 1,
      minute: { requests_left: 3 },
      day: { requests_left: 18 },
      queue: { interactive: 0, batch: 0 },
    });
    // By now the second is settled too: the route reads the window as it is.
    const [{ tokens }] = await s.sql<{ tokens: number }[]>`
      select sum(window_tokens)::int as tokens from public.google_ai_usage_counters where model = ${FLASH}`;
    expect(flash.minute.tokens_left).toBe(250_000 - tokens);
  });

  it("a refusal carries 0 requests left and a reset matching its retry_after_ms", async () => {
    for (let i = 0; i < 5; i++) expect((await s.call({ model: FLASH, prompt: `p${i}`, mode: "NO_WAIT" })).status).toBe(200);
    const refused = await s.call({ model: FLASH, prompt: "one too many", mode: "NO_WAIT" });
    expect(refused.status).toBe(429);
    expect(refused.body.limit).toBe("rpm");
    expect(header(refused, "remaining-requests")).toBe("0");
    expect(header(refused, "limit-requests")).toBe("5");
    const retryAfterMs = refused.body.retry_after_ms as number;
    const reset = resetMs(refused, "requests")!;
    // The same reopening, read a moment after the reservation's own clock.
    expect(retryAfterMs - reset).toBeGreaterThanOrEqual(0);
    expect(retryAfterMs - reset).toBeLessThan(1_000);
    expect(header(refused, "remaining-requests-day")).toBe("15");
    expect(modelOf(await quota(), FLASH).minute.requests_left).toBe(0);
  });

  it("leaves out a limit the model does not have", async () => {
    await s.setLimit({ model: FLASH, tpm: null, rpd: null });
    const res = await s.call({ model: FLASH, prompt: "no token or day limit", mode: "NO_WAIT" });
    expect(res.status).toBe(200);
    expect(header(res, "remaining-requests")).toBe("4");
    expect(header(res, "limit-tokens")).toBeNull();
    expect(header(res, "remaining-tokens")).toBeNull();
    expect(header(res, "limit-requests-day")).toBeNull();
  });

  it("an answer after reservations that Google failed carries the quota its last reservation saw", async () => {
    s.sim.addFault({ kind: "http500", model: FLASH, count: 3 });
    try {
      const res = await s.call({ model: FLASH, prompt: "Google fails three times", mode: "NO_WAIT" });
      expect(res.status).toBe(502);
      expect(s.sim.stats().total.received).toBe(3);
      // Three reservations in the window, the last one's answer reported: 5 - 3.
      expect(header(res, "remaining-requests")).toBe("2");
      expect(header(res, "remaining-requests-day")).toBe("17");
    } finally {
      s.sim.clearFaults();
    }
  });

  it("no quota is known for an unknown model: no headers", async () => {
    const res = await s.call({ model: "gemini-9-ultra", prompt: "x" });
    expect(res.status).toBe(400);
    expect([...res.headers.keys()].filter((h) => h.startsWith("x-ratelimit-"))).toEqual([]);
  });
});

describe("the quota route", () => {
  it("a token sees only its models, its budgets and its class; a service caller every model and no budgets", async () => {
    const { token } = await mintToken(s.sql, "quota-notebook", { models: [GEMMA], maxRequests: 10, dailyMaxRequests: 40 });
    const used = await s.call({ model: GEMMA, prompt: "counted" }, { auth: token });
    expect(used.status).toBe(200);
    expect(header(used, "limit-requests")).toBe("30");

    const mine = await quota(token);
    expect(mine.status).toBe(200);
    expect((mine.body.models as ModelQuota[]).map((m) => m.model)).toEqual([GEMMA]);
    expect(mine.body.caller).toEqual({ kind: "token", client: "quota-notebook", priority_class: "batch" });
    expect(mine.body.budget).toMatchObject({ token_requests_left: 9, daily_requests_left: 39, token_tokens_left: null });
    expect(modelOf(mine, GEMMA).minute.requests_left).toBe(29);

    const all = await quota();
    expect(all.body.caller).toMatchObject({ kind: "service", client: null });
    expect((all.body.models as ModelQuota[]).map((m) => m.model)).toEqual(expect.arrayContaining([FLASH, GEMMA]));
    expect([modelOf(all, GEMMA).provider, modelOf(all, "gpt-4o").provider]).toEqual(["google", "openai"]);
    expect(Object.values(all.body.budget as Record<string, unknown>).every((v) => v === null)).toBe(true);
  });

  it("a service caller with a daily budget sees what its requests left, and the refusal once used up agrees", async () => {
    await s.sql`insert into public.google_ai_caller_budgets (caller, daily_max_requests, daily_max_tokens)
                values ('quota-digest', 2, 100000)`;
    try {
      const fresh = await quotaAs("quota-digest");
      expect(fresh.status).toBe(200);
      expect(fresh.body.caller).toMatchObject({ kind: "service", client: null });
      expect(fresh.body.budget).toMatchObject({
        token_requests_left: null, token_tokens_left: null, token_expires_at: null,
        daily_requests_left: 2, daily_tokens_left: 100_000,
      });
      const [{ midnight }] = await s.sql<{ midnight: Date }[]>`
        select public.google_ai_pacific_midnight_after(now()) as midnight`;
      expect(Date.parse(fresh.body.budget.daily_resets_at)).toBe(midnight.getTime());

      const generate = (prompt: string) =>
        s.call({ model: GEMMA, prompt, mode: "NO_WAIT" }, { headers: { "x-caller": "quota-digest" } });
      expect((await generate("first")).status).toBe(200);
      const [row] = await s.sql<{ tokens: number }[]>`
        select tokens_today::int as tokens from public.google_ai_caller_budgets where caller = 'quota-digest'`;
      expect(row!.tokens).toBeGreaterThan(0);
      expect((await quotaAs("quota-digest")).body.budget)
        .toMatchObject({ daily_requests_left: 1, daily_tokens_left: 100_000 - row!.tokens });

      expect((await generate("second")).status).toBe(200);
      const spent = await quotaAs("quota-digest");
      expect(spent.body.budget).toMatchObject({ daily_requests_left: 0 });
      const refused = await generate("third");
      expect(refused.status).toBe(429);
      expect(refused.body.limit).toBe("caller_budget");
      // The refusal's retry is the route's reset: the Pacific midnight.
      const retryAt = Date.now() + (refused.body.retry_after_ms as number);
      expect(Math.abs(retryAt - Date.parse(spent.body.budget.daily_resets_at))).toBeLessThan(2_000);

      // The budget is the label's: the default label and another one have none.
      for (const other of [await quota(), await quotaAs("quota-other")]) {
        expect(Object.values(other.body.budget as Record<string, unknown>).every((v) => v === null)).toBe(true);
      }
    } finally {
      await s.sql`delete from public.google_ai_caller_budgets where caller = 'quota-digest'`;
    }
  });

  it("without a credential is 401 and logged (the handler asks the database nothing first: handler.test.ts); a revoked token is 401 too", async () => {
    const res = await quota(null);
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe("unauthorized");
    const line = s.logs.map((l) => /\{"function":"llm-invoke".*\}/.exec(l)?.[0]).filter(Boolean)
      .map((l) => JSON.parse(l!)).find((l) => l.request_id === res.body.request_id);
    expect(line).toMatchObject({ method: "GET", outcome: "unauthorized", status: 401 });

    const { token, clientId } = await mintToken(s.sql, "quota-revoked", { models: [GEMMA] });
    await s.sql`update public.google_ai_clients set revoked_at = now() where id = ${clientId}`;
    const revoked = await quota(token);
    expect(revoked.status).toBe(401);
    expect(revoked.body.error.code).toBe("token_revoked");
  });

  it("takes only GET; the generating route only POST; a path that is no route is 404", async () => {
    const auth = { authorization: `Bearer ${s.serviceKey}` };
    const native = await s.raw({ method: "GET", path: "/functions/v1/llm-invoke", headers: auth });
    expect(native.status).toBe(405);
    expect(native.headers.get("allow")).toBe("POST");
    for (const path of ["/functions/v1/llm-invoke/v1/other", "/functions/v1/llm-invoke/quota"]) {
      const res = await s.raw({ method: "GET", path, headers: auth });
      expect(res.status, path).toBe(404);
      expect(res.body.error.code, path).toBe("not_found");
    }
    const posted = await s.raw({
      method: "POST",
      path: "/functions/v1/llm-invoke/v1/quota",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ model: FLASH, prompt: "x" }),
    });
    expect(posted.status).toBe(405);
    expect(posted.headers.get("allow")).toBe("GET");
    expect(s.sim.stats().total.received).toBe(0);
  });
});
