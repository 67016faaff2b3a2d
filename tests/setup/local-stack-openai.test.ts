// The local stack runs both simulators: the functions' OPENAI_BASE_URL names the OpenAI simulator and
// OPENAI_API_KEY (the seeded OpenAI key row's secret) is one of its keys, so a function reaches it with
// nothing but its environment. With a real OPENAI_API_KEY, no OpenAI simulator and no OPENAI_BASE_URL.
// A probe function (written to a temporary folder) asks GET /v1/models as the gateway will, and
// answers what it saw; the secret itself never leaves it.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LOCAL_OPENAI_SIMULATOR_KEY, type LocalStack, startLocalStack } from "../../scripts/local-stack.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";

const PROBE = `
Deno.serve({ hostname: "127.0.0.1", port: Number(Deno.env.get("PORT")) }, async (req) => {
  // Only a call that asks: the functions server's own readiness request must not reach the simulator.
  if (!new URL(req.url).searchParams.has("ask")) return new Response("ready");
  const base = Deno.env.get("OPENAI_BASE_URL") ?? null;
  const key = Deno.env.get("OPENAI_API_KEY") ?? "";
  let status = null;
  let ids = [];
  if (base !== null) {
    const res = await fetch(base + "/v1/models", { headers: { authorization: "Bearer " + key } });
    status = res.status;
    ids = ((await res.json()).data ?? []).map((m) => m.id);
  }
  return Response.json({ base, status, ids, google: Deno.env.get("GOOGLE_AI_BASE_URL") ?? null });
});
`;

let db: TestDatabase;
let dir: string;

beforeAll(async () => {
  db = await freshDatabase("local_stack_openai");
  dir = mkdtempSync(path.join(tmpdir(), "eve-openai-probe-"));
  mkdirSync(path.join(dir, "probe"));
  writeFileSync(path.join(dir, "probe", "index.ts"), PROBE);
}, 60_000);

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await db?.drop();
});

async function probe(stack: LocalStack): Promise<{ base: string | null; status: number | null; ids: string[]; google: string | null }> {
  const res = await fetch(`${stack.functionsUrl}/functions/v1/probe?ask`);
  expect(res.status).toBe(200);
  return res.json();
}

describe("the local stack and OpenAI", () => {
  it("starts both simulators; the functions reach the OpenAI one by OPENAI_BASE_URL with the seeded key's secret", async () => {
    const stack = await startLocalStack({
      functionsPort: 0, databaseUrl: db.url, functionsDir: dir, google: "simulator", openai: "simulator", log: () => {},
    });
    try {
      const openai = stack.openaiSimulator!;
      expect(stack.simulator).toBeDefined();
      expect(openai.url).not.toBe(stack.simulator!.url);
      // TPM settled on input + output, as the gateway settles a request.
      expect(openai.settle).toBe("usage");
      const seen = await probe(stack);
      expect(seen).toMatchObject({ base: openai.url, status: 200, google: stack.simulator!.url });
      expect(seen.ids).toContain("gpt-4o");
      const stats = openai.stats();
      expect(stats.byMethod["models.list"]).toMatchObject({ received: 1, byStatus: { "200": 1 } });
      expect(Object.keys(stats.byKey)).toEqual([LOCAL_OPENAI_SIMULATOR_KEY]);
      expect(stats.byOrganization["org-sim-a"]?.received).toBe(1);
      // That secret is the one the seeded OpenAI key row names.
      const keys = await db.sql`select env_var_name from public.google_ai_api_keys where serves_provider = 'openai'`;
      expect(keys).toEqual([{ env_var_name: "OPENAI_API_KEY" }]);
    } finally {
      await stack.close();
    }
    // Closed with the stack.
    await expect(fetch(`${stack.openaiSimulator!.url}/__sim/health`)).rejects.toThrow();
  }, 60_000);

  it("with a real OPENAI_API_KEY: no OpenAI simulator, no OPENAI_BASE_URL", async () => {
    const stack = await startLocalStack({
      functionsPort: 0, databaseUrl: db.url, functionsDir: dir, google: "simulator",
      env: { OPENAI_API_KEY: "sk-not-a-real-key" }, log: () => {},
    });
    try {
      expect(stack.openaiSimulator).toBeUndefined();
      expect((await probe(stack)).base).toBeNull();
    } finally {
      await stack.close();
    }
  }, 60_000);

  it('"real" without a key is refused before anything starts', async () => {
    const saved = process.env.OPENAI_API_KEY;
    delete process.env.OPENAI_API_KEY;
    try {
      await expect(startLocalStack({ functionsPort: 0, databaseUrl: db.url, functionsDir: dir, openai: "real", log: () => {} }))
        .rejects.toThrow('openai: "real" needs OPENAI_API_KEY');
    } finally {
      if (saved !== undefined) process.env.OPENAI_API_KEY = saved;
    }
  });
});
