// OpenAI's model list (GET /v1/models) against the offline OpenAI simulator: the catalogue rows, and
// each failure classified by status and code the way llm-invoke classifies OpenAI's answers: a 401
// is the key (invalid_key), a 429, a 5xx, a broken body or a deadline concludes nothing (retryable).
// The key is never in a message.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type OpenAISimulator, startOpenAISimulator } from "../../../../../shared/openai-sim/server.ts";
import { createOpenAiModelLister, modelsOf, toCatalogueModel } from "./models.ts";

const KEY = "sk-sim-lister-a1";
let sim: OpenAISimulator;

beforeAll(async () => {
  sim = await startOpenAISimulator({ organizations: { "org-lister": { keys: [KEY] } } });
});
afterAll(async () => {
  await sim?.close();
});
beforeEach(() => sim.clearFaults());

const lister = () => createOpenAiModelLister({ baseUrl: sim.url, timeoutMs: 2_000 });

describe("createOpenAiModelLister", () => {
  it("lists the models the key's organization sees, ids only (no token limits in OpenAI's list)", async () => {
    const outcome = await lister().list(KEY);
    expect(outcome.ok).toBe(true);
    if (!outcome.ok) return;
    const ids = outcome.models.map((m) => m.model);
    expect(ids).toEqual(expect.arrayContaining(["gpt-4o", "gpt-4o-mini"]));
    expect(ids).not.toContain("gpt-4"); // withdrawn in the simulator: OpenAI's list leaves it out
    expect(outcome.models.find((m) => m.model === "gpt-4o")).toEqual({
      model: "gpt-4o",
      display_name: null,
      version: null,
      input_token_limit: null,
      output_token_limit: null,
      supported_methods: [],
    });
    expect(sim.stats().byMethod["models.list"]?.byStatus).toMatchObject({ 200: 1 });
  });

  it("accepts a base URL that already names /v1", async () => {
    const outcome = await createOpenAiModelLister({ baseUrl: `${sim.url}/v1/` }).list(KEY);
    expect(outcome.ok).toBe(true);
  });

  it("classifies a key OpenAI does not know as invalid_key (401 invalid_api_key), without the key in the message", async () => {
    const key = "sk-sim-revoked-by-the-owner-0123456789";
    const outcome = await lister().list(key);
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.error).toMatchObject({ class: "invalid_key", httpStatus: 401, reason: "invalid_api_key",
      upstream: "OpenAI" });
    expect(outcome.error.message).not.toContain(key);
  });

  it("classifies a revoked key's 401 by status, whatever its wording", async () => {
    sim.addFault({ kind: "invalid_key", apiKey: KEY, methods: ["models.list"], count: 1 });
    const outcome = await lister().list(KEY);
    expect(outcome.ok ? null : outcome.error).toMatchObject({ class: "invalid_key", httpStatus: 401 });
  });

  it.each([
    ["a rate limit", { kind: "rate_limited" as const }, 429],
    ["an empty wallet (a list spends nothing, so nothing is learned)", { kind: "insufficient_quota" as const }, 429],
    ["a 500", { kind: "http500" as const }, 500],
    ["a 502 HTML page", { kind: "http502" as const }, 502],
    ["a 503", { kind: "http503" as const }, 503],
  ])("does not blame the key for %s", async (_name, fault, status) => {
    sim.addFault({ ...fault, apiKey: KEY, methods: ["models.list"], count: 1 });
    const outcome = await lister().list(KEY);
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.error.class).not.toBe("invalid_key");
    expect(outcome.error.httpStatus).toBe(status);
  });

  it("classifies a cut-off body as malformed and a silent server as a timeout, neither the key's fault", async () => {
    sim.addFault({ kind: "malformed", apiKey: KEY, methods: ["models.list"], count: 1 });
    const broken = await lister().list(KEY);
    expect(broken.ok ? null : broken.error).toMatchObject({ class: "retryable", kind: "malformed" });
    sim.addFault({ kind: "hang", apiKey: KEY, methods: ["models.list"], count: 1 });
    const silent = await createOpenAiModelLister({ baseUrl: sim.url }).list(KEY, { timeoutMs: 200 });
    expect(silent.ok ? null : silent.error).toMatchObject({ class: "retryable", kind: "timeout" });
  });

  it("classifies a refused connection as a network failure", async () => {
    const outcome = await createOpenAiModelLister({ baseUrl: "http://127.0.0.1:9" }).list(KEY);
    expect(outcome.ok ? null : outcome.error).toMatchObject({ class: "retryable", kind: "network" });
  });
});

describe("modelsOf", () => {
  it("keeps entries with an id, and refuses a body without a data array", () => {
    expect(modelsOf({ object: "list", data: [{ id: "gpt-4o", created: 1, owned_by: "system" }, { id: "" }, {}, 7] })
      ?.map((m) => m.model)).toEqual(["gpt-4o"]);
    expect(modelsOf({ object: "list" })).toBeNull();
    expect(modelsOf("<html>")).toBeNull();
    expect(modelsOf({ data: [{ id: "a" }, { id: "b" }, { id: "c" }] }, 2)?.map((m) => m.model)).toEqual(["a", "b"]);
    expect(toCatalogueModel({ id: "x".repeat(201) })).toBeNull();
  });
});
