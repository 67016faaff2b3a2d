// The local stack runs the Anthropic simulator beside the other two: the functions' ANTHROPIC_BASE_URL
// names it, ANTHROPIC_API_KEY is one of its keys, and the local key row (the seed has no Anthropic one)
// names that secret, so a Claude model answers through llm-invoke with no real key, on the native route
// and on Anthropic's own /v1/messages. With a real ANTHROPIC_API_KEY: no simulator, no ANTHROPIC_BASE_URL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  LOCAL_ANTHROPIC_KEY_ALIAS,
  LOCAL_ANTHROPIC_SIMULATOR_KEY,
  startLocalStack,
} from "../../scripts/local-stack.ts";
import { freshDatabase, type TestDatabase } from "../support/test-database.ts";

let db: TestDatabase;

beforeAll(async () => {
  db = await freshDatabase("local_stack_anthropic");
}, 60_000);

afterAll(async () => {
  await db?.drop();
});

const anthropicKeys = () =>
  db.sql`select key_alias, env_var_name, is_active from public.google_ai_api_keys where serves_provider = 'anthropic'`;

describe("the local stack and Anthropic", () => {
  it("a Claude model answers through llm-invoke from the Anthropic simulator with the local key row", async () => {
    const stack = await startLocalStack({
      functionsPort: 0, databaseUrl: db.url, google: "simulator", openai: "simulator", anthropic: "simulator",
      anthropicKeyRow: true, only: ["llm-invoke"], log: () => {},
    });
    try {
      const sim = stack.anthropicSimulator!;
      expect(sim.url).not.toBe(stack.openaiSimulator!.url);
      expect(await anthropicKeys()).toEqual([{ key_alias: LOCAL_ANTHROPIC_KEY_ALIAS, env_var_name: "ANTHROPIC_API_KEY", is_active: true }]);
      const url = `${stack.functionsUrl}/functions/v1/llm-invoke`;
      const headers = { authorization: `Bearer ${stack.serviceKey}`, "content-type": "application/json" };

      const native = await fetch(url, { method: "POST", headers, body: JSON.stringify({ model: "claude-sonnet-5-5", prompt: "hello claude" }) });
      const answer = await native.json();
      expect(native.status, JSON.stringify(answer)).toBe(200);
      expect(answer).toMatchObject({
        model: "claude-sonnet-5-5", key_alias: LOCAL_ANTHROPIC_KEY_ALIAS, attempts: 1,
        text: "sim(claude-sonnet-5-5): hello claude",
      });

      const messages = await fetch(`${url}/v1/messages`, {
        method: "POST",
        headers: { ...headers, "anthropic-version": "2023-06-01" },
        body: JSON.stringify({ model: "claude-haiku-5-5", max_tokens: 64, messages: [{ role: "user", content: "hi haiku" }] }),
      });
      const message = await messages.json();
      expect(messages.status, JSON.stringify(message)).toBe(200);
      expect(message).toMatchObject({ type: "message", content: [{ type: "text", text: "sim(claude-haiku-5-5): hi haiku" }] });

      // Both reached the simulator with its dev key, nothing else.
      const stats = sim.stats();
      expect(Object.keys(stats.byKey)).toEqual([LOCAL_ANTHROPIC_SIMULATOR_KEY]);
      expect(stats.byMethod.messages).toMatchObject({ received: 2, byStatus: { "200": 2 } });
    } finally {
      await stack.close();
    }
    // Closed with the stack.
    await expect(fetch(`${stack.anthropicSimulator!.url}/v1/models`)).rejects.toThrow();
  }, 90_000);

  it("with a real ANTHROPIC_API_KEY: no Anthropic simulator; a caller's database gets no local key row unless asked", async () => {
    await db.sql`delete from public.google_ai_api_keys where serves_provider = 'anthropic'`;
    const stack = await startLocalStack({
      functionsPort: 0, databaseUrl: db.url, only: ["issue-kaggle-token"],
      env: { ANTHROPIC_API_KEY: "sk-ant-not-a-real-key" }, log: () => {},
    });
    try {
      expect(stack.anthropicSimulator).toBeUndefined();
      expect(stack.openaiSimulator).toBeDefined();
      expect(await anthropicKeys()).toEqual([]);
    } finally {
      await stack.close();
    }
  }, 60_000);
});
