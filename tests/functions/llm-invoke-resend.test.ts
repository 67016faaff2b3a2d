// Every call a provider receives has its attempt row, whatever the transport does to it. llm-invoke
// with Google's, OpenAI's and Anthropic's clients pointed at an upstream that cuts 30% of its
// connections (tests/support/cutting-upstream.ts): after reading the whole request (where a fetch that
// re-sends a POST on a pooled connection would send it again, unbooked) and after the status line.
// Each request names itself (request_id, and the nonce in its prompt that the upstream counts), sent
// one by one (whole and streamed) and 8 at a time; per request, the upstream's arrivals equal its
// attempt rows (over HTTP/2 a closed connection also takes requests sent beside the cut one, some
// unread: those are booked as spent, network errors, as the gateway cannot know), and the caller has
// an answer or a worded error (JSON, or a stream's error event). Over plain HTTP/1.1, HTTP/1.1 over
// TLS and HTTP/2 over TLS (ALPN), the certificate made at test time and trusted through DENO_CERT.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CallResult, eventually, type InvokeStack, startInvokeStack } from "./llm-invoke-helpers.ts";
import { type CutMode, type CuttingUpstream, startCuttingUpstream, type Transport } from "../support/cutting-upstream.ts";
import { makeTestCert, type TestCert } from "../../shared/test-cert.ts";

/** One model of each provider's client (each a seeded row); the upstream tells them apart by path. */
const MODELS = { google: "gemini-2.5-flash", openai: "gpt-4o", anthropic: "claude-sonnet-4-5" } as const;
const SEQUENTIAL = 8;
const CONCURRENT = 16;
/** Of each provider's, streamed (`"stream": true`: the provider's stream, opened by call.ts' openStream). */
const STREAMED = 4;
const AT_ONCE = 8;
/** The statuses of an attempt that made a call (a reservation released or refused made none). */
const CALLED = ["succeeded", "upstream_error", "network_error", "timeout", "cut"];

let cert: TestCert;

beforeAll(() => {
  cert = makeTestCert();
});

afterAll(() => {
  cert?.remove();
});

describe.each<Transport>(["http", "https", "h2"])("over %s", (transport) => {
  let upstream: CuttingUpstream;
  let s: InvokeStack;

  beforeAll(async () => {
    upstream = await startCuttingUpstream({ transport, tls: cert });
    s = await startInvokeStack(`llm_invoke_resend_${transport}`, {
      keys: [
        { alias: "google-main", project: "proj-g", priority: 1, simKey: "sim-key-g" },
        { alias: "openai-main", provider: "openai", project: "org-o", priority: 1, simKey: "sk-sim-o" },
      ],
      env: {
        GOOGLE_AI_BASE_URL: upstream.url,
        OPENAI_BASE_URL: upstream.url,
        ANTHROPIC_BASE_URL: upstream.url,
        ANTHROPIC_TEST_KEY_CUT: "sk-ant-cut",
        DENO_CERT: cert.caFile,
        LLM_INVOKE_BACKOFF_BASE_MS: "10",
      },
    });
    await s.sql`insert into public.google_ai_api_keys (key_alias, provider, env_var_name, project_id, priority, is_active)
                values ('claude-cut', 'anthropic', 'ANTHROPIC_TEST_KEY_CUT', 'org-a', 1, true)`;
    // Room for every call: only the transport may fail one.
    await s.sql`update public.google_ai_model_limits set rpm = 100000,
                  tpm = case when tpm is not null then 100000000 end, rpd = case when rpd is not null then 1000000 end,
                  itpm = case when itpm is not null then 100000000 end, otpm = case when otpm is not null then 100000000 end
                where model = any (${Object.values(MODELS)}::text[])`;
  }, 120_000);

  afterAll(async () => {
    await s?.close();
    await upstream?.close();
  });

  it.each<Exclude<CutMode, "none">>(["after-request", "after-status"])(
    "cut %s (3 connections in 10): each request's arrivals = its attempt rows; every caller answered or told why",
    async (mode) => {
      upstream.reset();
      upstream.setMode(mode);
      const ids: string[] = [];
      const results = new Map<string, CallResult>();
      const send = async (model: string, id: string, stream = false) => {
        ids.push(id);
        const body = { model, prompt: `nonce:${id} say hi`, request_id: id, mode: "NO_WAIT", ...(stream ? { stream } : {}) };
        results.set(id, await s.call(body));
      };
      for (const [provider, model] of Object.entries(MODELS)) {
        const tag = `${transport}-${mode}-${provider}`;
        for (let i = 0; i < SEQUENTIAL; i++) await send(model, `${tag}-s${i}`);
        for (let i = 0; i < STREAMED; i++) await send(model, `${tag}-stream${i}`, true);
        let next = 0;
        await Promise.all(Array.from({ length: AT_ONCE }, async () => {
          while (next < CONCURRENT) await send(model, `${tag}-c${next++}`);
        }));
      }
      upstream.setMode("none");

      for (const id of ids) {
        const res = results.get(id)!;
        if (res.status === 200) {
          // A stream ends with the whole answer or an error event that says what went wrong.
          const ended = !id.includes("-stream") || /"type":"(done|error)"/.test(res.text);
          expect(ended, `${id}: ${res.text.slice(-300)}`).toBe(true);
          continue;
        }
        // A worded error: JSON with a message, never a bare 5xx.
        expect(res.body?.error?.message, `${id}: ${res.status} ${res.text.slice(0, 200)}`).toEqual(expect.any(String));
      }
      // A success's finalize may land after its answer: wait until no row of these requests is open.
      await eventually(async () => {
        const [open] = await s.sql<{ n: number }[]>`select count(*)::int as n from public.google_ai_attempts
          where request_id = any (${ids}::text[]) and status = 'reserved'`;
        return open!.n === 0;
      }, 15_000);
      const rows = await s.sql<{ request_id: string; n: number; network: number; failed: number }[]>`
        select request_id, count(*)::int as n, count(*) filter (where status = 'network_error')::int as network,
               count(*) filter (where status <> 'succeeded')::int as failed
        from public.google_ai_attempts
        where request_id = any (${ids}::text[]) and status = any (${CALLED}::text[]) group by request_id`;
      const booked = new Map(rows.map((r) => [r.request_id, r]));
      const arrivals = upstream.arrivals();
      const differ = ids.flatMap((id) => {
        const arrived = arrivals.get(id) ?? 0;
        const row = booked.get(id) ?? { n: 0, network: 0 };
        // Over HTTP/2 a closed connection also takes requests sent beside the cut one, some before the
        // upstream read them: the gateway cannot tell, so it books each as a call (a network error).
        const unread = transport === "h2" ? Math.min(row.network, Math.max(0, row.n - arrived)) : 0;
        return row.n - unread === arrived ? [] : [`${id}: ${arrived} arrived, ${row.n} booked`];
      });
      expect(differ).toEqual([]);
      // Each cut is a failed call on its own row (whose booking finalize keeps: only a provider's 4xx
      // refusal gives input back, attempt-record.ts), and its request called again under a reservation
      // of its own rather than lose the caller. Over HTTP/1.1
      // each is a network error; over HTTP/2 a cut after the HEADERS frame (the answer's whole head)
      // reads as an answer without its body (malformed), and streams lost beside a cut add to them.
      const cut = upstream.counts().cut;
      const failed = rows.reduce((sum, r) => sum + r.failed, 0);
      expect(cut).toBeGreaterThan(0);
      if (transport === "h2") expect(failed).toBeGreaterThanOrEqual(cut);
      else expect(rows.reduce((sum, r) => sum + r.network, 0)).toBe(cut);
      expect(rows.filter((r) => r.n > 1).length).toBeGreaterThan(0);
      expect([...results.values()].filter((r) => r.status === 200).length).toBeGreaterThan(ids.length / 2);
    },
    120_000,
  );
});
