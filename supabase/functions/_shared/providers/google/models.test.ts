// models.list over REST against the offline simulator: every page, the catalogue fields,
// and each failure classified the way llm-invoke classifies it, with the key never in a message.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { DEFAULT_MODELS } from "../../../../../shared/google-sim/config.ts";
import { type GoogleSimulator, startGoogleSimulator } from "../../../../../shared/google-sim/server.ts";
import { createModelLister, toCatalogueModel } from "./models.ts";

let sim: GoogleSimulator;
// 1,204 extra models: with 1,000 per page the list takes two pages.
const EXTRA = Object.fromEntries(Array.from({ length: 1204 }, (_, i) => [`extra-model-${i}`, { rpm: 1 }]));

beforeAll(async () => {
  sim = await startGoogleSimulator({ keys: { "sim-key-a1": "sim-project-a" }, models: EXTRA });
});
afterAll(async () => {
  await sim?.close();
});
beforeEach(() => sim.clearFaults());

describe("createModelLister", () => {
  it("lists every model on every page with its token limits and methods", async () => {
    const outcome = await createModelLister({ baseUrl: sim.url }).list("sim-key-a1");
    expect(outcome.ok).toBe(true);
    if (!outcome.ok) return;
    expect(outcome.models).toHaveLength(1204 + Object.keys(DEFAULT_MODELS).length);
    expect(outcome.models.find((m) => m.model === "gemma-3-27b-it")).toEqual({
      model: "gemma-3-27b-it",
      display_name: expect.any(String),
      version: expect.any(String),
      input_token_limit: 131072,
      output_token_limit: 8192,
      supported_methods: ["generateContent", "countTokens"],
    });
    expect(outcome.models.find((m) => m.model === "gemini-2.5-flash")?.input_token_limit).toBe(1048576);
    const pages = sim.stats().recent.filter((r) => r.method === "models.list");
    expect(pages).toHaveLength(2);
  });

  it("classifies a key Google does not know as invalid_key (400 API_KEY_INVALID), without the key in the message", async () => {
    const key = "sim-key-that-was-revoked-1234";
    const outcome = await createModelLister({ baseUrl: sim.url }).list(key);
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.error).toMatchObject({ class: "invalid_key", httpStatus: 400, reason: "API_KEY_INVALID" });
    expect(outcome.error.message).toMatch(/API key not valid/);
    expect(JSON.stringify(outcome)).not.toContain(key);
  });

  it("classifies a valid key that Google now refuses (revoked) as invalid_key", async () => {
    sim.addFault({ kind: "invalid_key", apiKey: "sim-key-a1", methods: ["models.list"] });
    const outcome = await createModelLister({ baseUrl: sim.url }).list("sim-key-a1");
    expect(!outcome.ok && outcome.error.class).toBe("invalid_key");
  });

  it("classifies 503 as retryable and 429 as rate_limited: neither says anything about the key", async () => {
    sim.addFault({ kind: "http503", methods: ["models.list"], count: 1 });
    const unavailable = await createModelLister({ baseUrl: sim.url }).list("sim-key-a1");
    expect(!unavailable.ok && unavailable.error).toMatchObject({ class: "retryable", httpStatus: 503 });
    sim.addFault({ kind: "rate_limited", methods: ["models.list"], count: 1 });
    const limited = await createModelLister({ baseUrl: sim.url }).list("sim-key-a1");
    expect(!limited.ok && limited.error).toMatchObject({ class: "rate_limited", httpStatus: 429 });
  });

  it("gives up at its deadline when Google does not answer", async () => {
    sim.addFault({ kind: "hang", methods: ["models.list"] });
    const started = Date.now();
    const outcome = await createModelLister({ baseUrl: sim.url, timeoutMs: 300 }).list("sim-key-a1");
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(!outcome.ok && outcome.error).toMatchObject({ class: "retryable", kind: "timeout" });
  });

  it("reports a network failure as retryable", async () => {
    const outcome = await createModelLister({ baseUrl: "http://127.0.0.1:9" }).list("sim-key-a1");
    expect(!outcome.ok && outcome.error).toMatchObject({ class: "retryable", kind: "network" });
  });
});

describe("toCatalogueModel", () => {
  it("strips models/, keeps sane numbers and strings, drops nameless entries", () => {
    expect(
      toCatalogueModel({
        name: "models/x-1",
        inputTokenLimit: 10,
        outputTokenLimit: -1,
        supportedGenerationMethods: ["a", 3 as never],
      }),
    )
      .toEqual({
        model: "x-1",
        display_name: null,
        version: null,
        input_token_limit: 10,
        output_token_limit: null,
        supported_methods: ["a"],
      });
    expect(toCatalogueModel({ displayName: "no name" })).toBeNull();
  });
});
