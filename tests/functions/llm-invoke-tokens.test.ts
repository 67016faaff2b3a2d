// Scoped tokens at llm-invoke over HTTP: a token minted with SQL (as issue-kaggle-token does) is
// accepted; the audit log names the client and the token by id; expired, revoked, forged and
// out-of-scope tokens are refused with 401/403; budgets answer 429 (token: mint a new one; client:
// until Pacific midnight); a request is counted once against the token however many attempts it
// takes; the token itself is stored nowhere.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { allRowsAsText, type InvokeStack, mintToken, newToken, startInvokeStack } from "./llm-invoke-helpers.ts";

let s: InvokeStack;
const tokens: string[] = [];
let clientNo = 0;

async function token(options: Parameters<typeof mintToken>[2] = {}) {
  const minted = await mintToken(s.sql, `kaggle-nb-${++clientNo}`, options);
  tokens.push(minted.token, minted.secret);
  return { ...minted, name: `kaggle-nb-${clientNo}` };
}

beforeAll(async () => {
  s = await startInvokeStack("llm_invoke_tokens", {
    keys: [
      { alias: "tok-a", project: "proj-ta", priority: 1, simKey: "sim-key-tok-a" },
      { alias: "tok-b", project: "proj-tb", priority: 2, simKey: "sim-key-tok-b" },
      { alias: "tok-unset", project: "proj-tu", priority: 0, simKey: "sim-key-tok-u", noSecret: true },
    ],
  });
});

afterAll(async () => {
  await s?.close();
});

beforeEach(async () => {
  await s.reset();
  await s.sql`update public.google_ai_api_keys set is_active = key_alias in ('tok-a', 'tok-b')`;
});

describe("a valid token", () => {
  it("is served; the audit row names the client and the token id; the token's budget is booked", async () => {
    const t = await token({ models: ["gemma-3-27b-it"], maxRequests: 5 });
    const res = await s.call({ model: "gemma-3-27b", prompt: "from a notebook", request_id: "tok-ok" }, {
      auth: t.token,
      headers: { "x-caller": "notebook-7" },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ model: "gemma-3-27b-it", key_alias: "tok-a", attempts: 1 });
    const [row] = await s.sql`select status, caller, client_id, token_id, input_tokens from public.google_ai_attempts
                              where request_id = 'tok-ok'`;
    expect(row).toEqual({
      status: "succeeded",
      caller: `client:${t.name}`,
      client_id: t.clientId,
      token_id: t.tokenId,
      input_tokens: res.body.usage.prompt_tokens,
    });
    const [tok] = await s.sql`select requests_used, tokens_used, last_used_at is not null as used
                              from public.google_ai_tokens where id = ${t.tokenId}`;
    expect(tok).toEqual({ requests_used: 1, tokens_used: res.body.usage.prompt_tokens, used: true });
    const [usage] = await s.sql`select meta from public.token_usage where request_id = 'tok-ok'`;
    expect(usage!.meta).toMatchObject({ caller: `client:${t.name}` });
  });

  it("keeps its stored answers apart from a service caller that labels itself client:<name>", async () => {
    const t = await token();
    const asClient = await s.call({ model: "gemma-3-27b", prompt: "the client's secret question", request_id: "ns-1" }, {
      auth: t.token,
    });
    expect(asClient.status).toBe(200);
    // The same request_id from the service key under the client's own caller name: not a replay of
    // the client's answer, but a request of its own.
    const impostor = await s.call({ model: "gemma-3-27b", prompt: "something else", request_id: "ns-1" }, {
      headers: { "x-caller": `client:${t.name}` },
    });
    expect(impostor.status).toBe(200);
    expect(impostor.body.replayed).toBeUndefined();
    expect(impostor.body.text).not.toBe(asClient.body.text);
    const callers = await s.sql`select distinct caller from public.google_ai_attempts where request_id = 'ns-1' order by caller`;
    expect(callers.map((r) => r.caller)).toEqual([`client:${t.name}`, `service:client:${t.name}`]);
  });

  it("is held to its client's output cap: above it 400 naming the cap, without maxOutputTokens the cap is sent", async () => {
    const t = await token();
    await s.sql`update public.google_ai_clients set max_output_tokens = 3 where id = ${t.clientId}::uuid`;
    const over = await s.call({ model: "gemma-3-27b", prompt: "x", generationConfig: { maxOutputTokens: 1_000_000 } }, { auth: t.token });
    expect(over.status).toBe(400);
    expect(over.body.error).toMatchObject({ code: "invalid_request", details: { max_output_tokens: 3 } });
    // Unnamed: the gateway asks Google for at most 3 output tokens (the simulator cuts there).
    s.sim.reset();
    const capped = await s.call({ model: "gemma-3-27b", prompt: "a question whose answer is long enough to cut" }, { auth: t.token });
    expect(capped.status).toBe(200);
    expect(s.sent("google").map((b) => b.generationConfig?.maxOutputTokens)).toEqual([3]);
    expect(capped.body.finish_reason).toBe("MAX_TOKENS");
    expect(capped.body.usage.completion_tokens).toBeLessThanOrEqual(3);
    const within = await s.call({ model: "gemma-3-27b", prompt: "x", generationConfig: { maxOutputTokens: 2 } }, { auth: t.token });
    expect(within.status).toBe(200);
  });

  it("is accepted in the apikey header too", async () => {
    const t = await token();
    const res = await s.call({ model: "gemini-2.5-flash", prompt: "x" }, { auth: null, headers: { apikey: t.token } });
    expect(res.status).toBe(200);
  });

  it("counts a request once however many attempts it takes (a 500, a key without secret)", async () => {
    const t = await token({ maxRequests: 1 });
    await s.sql`update public.google_ai_api_keys set is_active = true`; // tok-unset first: released
    s.sim.setFaults([{ kind: "http500", count: 1 }]);
    const res = await s.call({ model: "gemma-3-27b", prompt: "retry me", request_id: "tok-retry" }, { auth: t.token });
    expect(res.status).toBe(200);
    expect(res.body.attempts).toBe(2);
    const rows = await s.sql`select attempt, status, key_alias from public.google_ai_attempts
                             where request_id = 'tok-retry' order by id`;
    expect(rows.map((r) => [r.attempt, r.status])).toEqual([
      [1, "released"],
      [1, "upstream_error"],
      [2, "succeeded"],
    ]);
    const [tok] = await s.sql`select requests_used from public.google_ai_tokens where id = ${t.tokenId}`;
    expect(tok).toEqual({ requests_used: 1 });
    // The one request the token allowed is used up now.
    const again = await s.call({ model: "gemma-3-27b", prompt: "x" }, { auth: t.token });
    expect(again.status).toBe(429);
    expect(again.body.limit).toBe("token_budget");
  });
});

describe("refused tokens", () => {
  async function refusal(tokenValue: string, body: Record<string, unknown> = {}) {
    return await s.call({ model: "gemma-3-27b", prompt: "x", ...body }, { auth: tokenValue });
  }

  it("expired: 401 token_expired, counted in the aggregate row of its client, no attempt row", async () => {
    const t = await token();
    await s.sql`update public.google_ai_tokens set expires_at = now() - interval '1 second' where id = ${t.tokenId}`;
    const res = await refusal(t.token, { request_id: "tok-expired" });
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe("token_expired");
    const rows = await s.sql`select 1 from public.google_ai_attempts where request_id = 'tok-expired'`;
    expect(rows).toHaveLength(0);
    const [agg] = await s.sql`select r.reason, r.refusals, c.name from public.google_ai_credential_refusals r
                              join public.google_ai_clients c on c.id = r.client_id where r.token_id = ${t.tokenId}`;
    expect(agg).toEqual({ reason: "token_expired", refusals: 1, name: t.name });
  });

  it("revoked token, and a token of a revoked client: 401 token_revoked", async () => {
    const t = await token();
    await s.sql`select public.google_ai_revoke_token(${t.tokenId}::uuid)`;
    expect((await refusal(t.token)).body.error.code).toBe("token_revoked");
    const u = await token();
    await s.sql`select public.google_ai_revoke_client(${u.name}, 'left the project')`;
    const res = await refusal(u.token);
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe("token_revoked");
  });

  it("2,000 requests with a revoked token and 2,000 with made-up ones add no attempt row and no 5xx", async () => {
    const t = await token();
    await s.sql`select public.google_ai_revoke_token(${t.tokenId}::uuid)`;
    const [before] = await s.sql`select count(*)::int as n from public.google_ai_attempts`;
    const metadata = { notes: "m".repeat(900) };
    const statuses = new Map<number, number>();
    const send = async (i: number) => {
      const auth = i % 2 === 0 ? t.token : newToken();
      const res = await s.call({ model: "gemma-3-27b", prompt: "x", metadata }, { auth });
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    };
    for (let i = 0; i < 4000; i += 40) await Promise.all(Array.from({ length: 40 }, (_, j) => send(i + j)));
    expect(Object.fromEntries(statuses)).toEqual({ 401: 4000 });
    const [after] = await s.sql`select count(*)::int as n from public.google_ai_attempts`;
    expect(after!.n - before!.n).toBe(0);
    // Counted in aggregate rows: the revoked token's own, and one per minute for every unknown token.
    const agg = await s.sql`select reason, token_id is not null as named, sum(refusals)::int as n, count(*)::int as rows
                            from public.google_ai_credential_refusals group by 1, 2 order by 1`;
    const invalid = agg.find((r) => r.reason === "token_invalid")!;
    expect(invalid.n).toBeGreaterThanOrEqual(2000);
    expect(invalid.rows).toBeLessThanOrEqual(3); // one per minute
    expect(agg.find((r) => r.reason === "token_revoked")!.named).toBe(true);
  }, 120_000);

  it("a made-up token is refused before its body is read", async () => {
    // A body the handler would refuse as invalid JSON (400) if it ever read it.
    const r = await fetch(s.url, {
      method: "POST",
      headers: { authorization: `Bearer ${newToken()}`, "content-type": "application/json" },
      body: "{ not json",
    });
    expect(r.status).toBe(401);
    expect((await r.json()).error.code).toBe("token_invalid");
  });

  it("forged (right shape, unknown): 401 token_invalid; a client secret is not a token: 401 unauthorized", async () => {
    const forged = await refusal(newToken());
    expect(forged.status).toBe(401);
    expect(forged.body.error.code).toBe("token_invalid");
    const t = await token();
    const secret = await refusal(t.secret);
    expect(secret.status).toBe(401);
    expect(secret.body.error.code).toBe("unauthorized");
  });

  it("a model outside the token's scope: 403 model_not_allowed", async () => {
    const t = await token({ models: ["gemini-2.5-flash"] });
    const res = await refusal(t.token, { model: "gemma-3-27b" });
    expect(res.status).toBe(403);
    expect(res.body.error).toMatchObject({ code: "model_not_allowed", details: { model: "gemma-3-27b" } });
    expect(s.sim.stats().total.received).toBe(0);
  });

  it("the token's budget used up: 429 limit token_budget, no Retry-After (a new token is needed), even in WAIT", async () => {
    const t = await token({ maxRequests: 1 });
    expect((await refusal(t.token)).status).toBe(200);
    const res = await refusal(t.token, { mode: "WAIT", max_wait_ms: 30_000 });
    expect(res.status).toBe(429);
    expect(res.body).toMatchObject({ error: { code: "rate_limited" }, limit: "token_budget", retry_after_ms: null });
    expect(res.headers.get("retry-after")).toBeNull();
    expect(res.ms).toBeLessThan(20_000); // not the 30 s max_wait_ms: a token refusal is never waited on
  });

  it("the client's daily budget used up: 429 limit client_budget until Pacific midnight", async () => {
    const t = await token({ dailyMaxRequests: 1 });
    expect((await refusal(t.token)).status).toBe(200);
    const res = await refusal(t.token, { mode: "NO_WAIT" });
    expect(res.status).toBe(429);
    expect(res.body).toMatchObject({ error: { code: "rate_limited" }, limit: "client_budget" });
    const [{ ms }] = await s.sql`select (extract(epoch from public.google_ai_pacific_midnight_after(now()) - now()) * 1000)::bigint as ms`;
    expect(Math.abs(res.body.retry_after_ms - Number(ms))).toBeLessThan(2000);
    expect(res.headers.get("retry-after")).toBe(String(Math.ceil(res.body.retry_after_ms / 1000)));
  });
});

describe("tokens are stored nowhere", () => {
  it("no token or client secret in any table, response or log line", async () => {
    expect(tokens.length).toBeGreaterThan(10);
    const leaks: string[] = [];
    for (const { table, text } of await allRowsAsText(s.sql)) {
      for (const t of tokens) if (text.includes(t)) leaks.push(`${table}: ${t.slice(0, 14)}…`);
    }
    for (const seen of s.seen) {
      for (const t of tokens) if (`${JSON.stringify(seen.headers)}${seen.text}`.includes(t)) leaks.push(`response: ${t.slice(0, 14)}…`);
    }
    for (const line of s.logs) for (const t of tokens) if (line.includes(t)) leaks.push(`log: ${t.slice(0, 14)}…`);
    expect(leaks).toEqual([]);
  });
});
