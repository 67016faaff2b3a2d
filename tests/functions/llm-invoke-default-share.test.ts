// The share kept for people by default, over HTTP on the gateway as `npm start` starts it
// (scripts/local-stack.ts: every function under Deno, the offline simulator, a database built from
// the migrations and the seed, nothing configured after). A Kaggle notebook (a token of class batch,
// minted through issue-kaggle-token) floods a seeded model: what the window has beyond the share goes at
// once; the bot, a service caller of class interactive, is still admitted at once: the seed keeps 20%
// of every model's RPM (at least 1) for it. The answers' headers and the quota route say what is kept, and for whom.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalStack, startLocalStack } from "../../scripts/local-stack.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";

// Seeded: 5 RPM and 20 RPD per quota group; the default share keeps 1 of the RPM and 2 of the RPD.
const MODEL = "gemini-2.5-flash";

let db: TestDatabase;
let stack: LocalStack;
let notebookToken: string;

beforeAll(async () => {
  db = await freshDatabase("llm_invoke_default_share");
  stack = await startLocalStack({ functionsPort: 0, databaseUrl: db.url, google: "simulator", log: () => {} });
  // The operator registers the notebook (what `npm run clients` does); the notebook mints its token.
  const [{ r }] = await db.sql<{ r: { secret: string } }[]>`
    select public.google_ai_create_client('festival-parser', array[${MODEL}]) as r`;
  const minted = await fetch(`${stack.functionsUrl}/functions/v1/issue-kaggle-token`, {
    method: "POST",
    headers: { authorization: `Bearer ${r.secret}`, "content-type": "application/json" },
    body: "{}",
  });
  expect(minted.status).toBe(200);
  notebookToken = ((await minted.json()) as { token: string }).token;
}, 120_000);

afterAll(async () => {
  await stack?.close();
  await db?.drop();
});

const invokeUrl = () => `${stack.functionsUrl}/functions/v1/llm-invoke`;

async function generate(auth: string, prompt: string, headers: Record<string, string> = {}) {
  const res = await fetch(invokeUrl(), {
    method: "POST",
    headers: { authorization: `Bearer ${auth}`, "content-type": "application/json", ...headers },
    // NO_WAIT: admitted at once or refused at once.
    body: JSON.stringify({ model: MODEL, prompt, mode: "NO_WAIT" }),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
}

async function quotaReport(auth: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${invokeUrl()}/v1/quota`, { headers: { authorization: `Bearer ${auth}`, ...headers } });
  expect(res.status).toBe(200);
  const report = (await res.json()) as { caller: { priority_class: string }; models: { model: string; kept: unknown }[] };
  return { caller: report.caller, model: report.models.find((m) => m.model === MODEL)! };
}

describe("with no configuration, a notebook's flood leaves the bot its share", () => {
  it("the notebook gets the window less the share at once, the bot its 1 at once; headers and the quota route say what is kept", async () => {
    // The notebook sees, before it starts, what is kept from it.
    const before = await quotaReport(notebookToken);
    expect(before.caller.priority_class).toBe("batch");
    expect(before.model.kept).toEqual({ rpm_for_others: 1, rpm_for_you: 0, rpd_for_others: 2, rpd_for_you: 0 });

    const flood = await Promise.all(Array.from({ length: 8 }, (_, i) => generate(notebookToken, `row ${i}`)));
    // Nobody waits: the window's 5 less the 1 kept for people go at once.
    const admitted = flood.filter((r) => r.status === 200);
    expect(admitted).toHaveLength(4);
    for (const r of flood.filter((r) => r.status !== 200)) {
      expect(r.status).toBe(429);
      expect(r.body).toMatchObject({ limit: "rpm", cause: "share_kept" });
    }
    for (const r of admitted) {
      expect(r.headers.get("x-ratelimit-kept-others-requests")).toBe("1");
      expect(r.headers.get("x-ratelimit-kept-others-requests-day")).toBe("2");
      expect(r.headers.get("x-ratelimit-kept-own-requests")).toBeNull();
    }

    // The person in Telegram: admitted at once, on the request the share kept.
    const bot = await generate(stack.serviceKey, "hello", { "x-caller": "telegram-bot" });
    expect(bot.status, JSON.stringify(bot.body)).toBe(200);
    expect(bot.headers.get("x-ratelimit-kept-own-requests")).toBe("1");
    expect(bot.headers.get("x-ratelimit-kept-own-requests-day")).toBe("2");
    expect(bot.headers.get("x-ratelimit-kept-others-requests")).toBeNull();
    expect(bot.headers.get("x-ratelimit-remaining-requests")).toBe("0");
    // The share was one request: the next finds the window full.
    expect((await generate(stack.serviceKey, "again", { "x-caller": "telegram-bot" })).status).toBe(429);

    const person = await quotaReport(stack.serviceKey, { "x-caller": "telegram-bot" });
    expect(person.caller.priority_class).toBe("interactive");
    expect(person.model.kept).toEqual({ rpm_for_others: 0, rpm_for_you: 1, rpd_for_others: 0, rpd_for_you: 2 });

    const [{ batch, interactive }] = await db.sql<{ batch: number; interactive: number }[]>`
      select count(*) filter (where priority_class = 'batch')::int as batch,
             count(*) filter (where priority_class = 'interactive')::int as interactive
      from public.google_ai_attempts where model = ${MODEL} and status = 'succeeded'`;
    expect({ batch, interactive }).toEqual({ batch: 4, interactive: 1 });
  }, 60_000);
});
