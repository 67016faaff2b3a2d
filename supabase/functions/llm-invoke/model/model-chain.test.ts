// The chain a request is served by: the caller's list or the model row's, each model adapted to the
// request, what is a 400 (the caller's own choices) and what is left out quietly (the operator's).
import { describe, expect, it } from "vitest";
import { GatewayError } from "../../_shared/errors.ts";
import { linkFor, requestFor, resolveChain } from "./model-chain.ts";
import { fitGeneration } from "./adapt.ts";
import { parseInvokeRequest } from "../surfaces/native/request.ts";
import type { ModelProfile } from "../contract.ts";

const FLASH: ModelProfile = {
  model: "gemini-2.5-flash",
  active: true,
  supportsSystemInstruction: true,
  supportsJsonMode: true,
  supportsTools: true,
  fallbackModels: ["gemini-2.5-flash-lite", "gemma-3-27b-it"], provider: "google", dialect: "google",
};
const LITE: ModelProfile = { ...FLASH, model: "gemini-2.5-flash-lite", fallbackModels: [] };
const GEMMA: ModelProfile = {
  model: "gemma-3-27b-it",
  active: true,
  supportsSystemInstruction: false,
  supportsJsonMode: false,
  supportsTools: false,
  fallbackModels: [], provider: "google", dialect: "google",
};
const ROWS: Record<string, ModelProfile> = {
  "gemini-2.5-flash": FLASH,
  "gemini-2.5-flash-lite": LITE,
  "gemma-3-27b-it": GEMMA,
  "gemma-3-27b": GEMMA,
};

function chainOf(body: Record<string, unknown>, rows: Record<string, ModelProfile> = ROWS) {
  const request = parseInvokeRequest({ prompt: "Привет", ...body });
  return resolveChain((name) => Promise.resolve(rows[name] ?? null), request, fitGeneration(request));
}

async function failure(promise: Promise<unknown>): Promise<GatewayError> {
  const error = await promise.then(() => null, (e: unknown) => e);
  expect(error).toBeInstanceOf(GatewayError);
  return error as GatewayError;
}

describe("resolveChain", () => {
  it("uses the model row's chain when the request names none, each link adapted to its model", async () => {
    const chain = await chainOf({ model: "gemini-2.5-flash", system: "Кратко." });
    expect(chain.map((l) => l.model)).toEqual(["gemini-2.5-flash", "gemini-2.5-flash-lite", "gemma-3-27b-it"]);
    expect(requestFor(chain, "gemini-2.5-flash").system).toBe("Кратко.");
    // Gemma takes no system instruction: its link folds it into the first user turn.
    expect(requestFor(chain, "gemma-3-27b-it")).toMatchObject({
      model: "gemma-3-27b-it",
      messages: [{ role: "user", parts: [{ type: "text", text: "Кратко.\n\nПривет" }] }],
    });
    expect(requestFor(chain, "gemma-3-27b-it").system).toBeUndefined();
  });

  it("prefers the caller's list to the row's, and an empty list means no fallback", async () => {
    expect((await chainOf({ model: "gemini-2.5-flash", fallback_models: ["gemma-3-27b"] })).map((l) => l.model))
      .toEqual(["gemini-2.5-flash", "gemma-3-27b-it"]);
    expect((await chainOf({ model: "gemini-2.5-flash", fallback_models: [] })).map((l) => l.model))
      .toEqual(["gemini-2.5-flash"]);
  });

  it("holds the caller to its list: an unknown model or one that cannot take the request is a 400", async () => {
    const unknown = await failure(chainOf({ model: "gemini-2.5-flash", fallback_models: ["gemini-9"] }));
    expect(unknown).toMatchObject({ code: "unknown_model", status: 400 });
    expect(unknown.message).toContain("gemini-9");
    const json = await failure(chainOf({
      model: "gemini-2.5-flash",
      fallback_models: ["gemma-3-27b"],
      generationConfig: { responseMimeType: "application/json" },
    }));
    expect(json).toMatchObject({ code: "unsupported_feature", details: { model: "gemma-3-27b-it" } });
  });

  it("leaves out of the row's chain what cannot serve the request: JSON mode on Gemma, unknown and retired rows", async () => {
    const json = await chainOf({
      model: "gemini-2.5-flash",
      generationConfig: { responseMimeType: "application/json" },
    });
    expect(json.map((l) => l.model)).toEqual(["gemini-2.5-flash", "gemini-2.5-flash-lite"]);
    const rows = {
      ...ROWS,
      "gemini-2.5-flash": { ...FLASH, fallbackModels: ["gone-model", "gemini-2.5-flash-lite", "gemma-3-27b-it"] },
      "gemini-2.5-flash-lite": { ...LITE, active: false },
    };
    expect((await chainOf({ model: "gemini-2.5-flash" }, rows)).map((l) => l.model)).toEqual([
      "gemini-2.5-flash",
      "gemma-3-27b-it",
    ]);
  });

  it("keeps a retired first model first (the database passes over it), unknown when nothing follows it", async () => {
    const rows = { ...ROWS, "gemini-2.5-flash": { ...FLASH, active: false } };
    expect((await chainOf({ model: "gemini-2.5-flash" }, rows)).map((l) => l.model))
      .toEqual(["gemini-2.5-flash", "gemini-2.5-flash-lite", "gemma-3-27b-it"]);
    expect(await failure(chainOf({ model: "gemini-2.5-flash", fallback_models: [] }, rows))).toMatchObject({
      code: "unknown_model",
    });
  });

  it("names each model once, aliases included", async () => {
    const chain = await chainOf({ model: "gemma-3-27b", fallback_models: ["gemma-3-27b-it", "gemini-2.5-flash"] });
    expect(chain.map((l) => l.model)).toEqual(["gemma-3-27b-it", "gemini-2.5-flash"]);
  });
});

describe("linkFor", () => {
  const GEMMA4: ModelProfile = { ...GEMMA, model: "gemma-4-31b-it", supportsSystemInstruction: true, supportsTools: true };
  const rows = { ...ROWS, "gemma-4-31b-it": GEMMA4 };
  const lookup = (name: string) => Promise.resolve(rows[name as keyof typeof rows] ?? null);

  it("the chain's own link for a model it names", async () => {
    const chain = await chainOf({ model: "gemma-3-27b", system: "Кратко." });
    const fit = fitGeneration(parseInvokeRequest({ model: "gemma-3-27b", prompt: "Привет" }));
    expect(await linkFor(lookup, chain, "gemma-3-27b-it", fit))
      .toBe(chain[0]);
  });

  it("a model the database resolved the name to since (a repointed alias): that model's row fits the request", async () => {
    const body = { model: "gemma-3-27b", system: "Кратко.", prompt: "Привет" };
    const chain = await chainOf(body); // the worker's cached row still says Gemma 3
    const link = await linkFor(lookup, chain, "gemma-4-31b-it", fitGeneration(parseInvokeRequest(body)));
    expect(link.request.model).toBe("gemma-4-31b-it");
    // Gemma 4's row takes a system instruction: nothing is folded.
    expect(link.request.system).toBeDefined();
    expect(JSON.stringify(link.request.messages)).not.toContain("Кратко.");
  });

  it("a booked model without a row (removed since): refused, never sent another model's request", async () => {
    const body = { model: "gemma-3-27b", system: "Кратко.", prompt: "Привет" };
    const chain = await chainOf(body); // Gemma 3's link: the system prompt folded into the question
    const error = await failure(linkFor(lookup, chain, "gemma-9-gone", fitGeneration(parseInvokeRequest(body))));
    expect(error.code).toBe("unavailable");
    expect(error.message).toContain("gemma-9-gone");
    expect(error.details).toEqual({ model: "gemma-9-gone" });
  });
});
