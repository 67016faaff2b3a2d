import { describe, expect, it } from "vitest";
import { cacheKey, canonicalJson, keyedRequest } from "./key.ts";

describe("the response cache's key", () => {
  it("writes JSON with its keys sorted at every depth, undefined fields left out", () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: undefined }], c: null } })).toBe(
      '{"a":{"c":null,"d":[2,{"z":1}]},"b":1}',
    );
  });

  it("is the same for the same request however its fields were ordered, and differs with the model or a word", async () => {
    const one = await cacheKey("google", "gemini-2.5-flash", { contents: [{ role: "user", parts: [{ text: "hi" }] }], generationConfig: { maxOutputTokens: 64 } });
    const two = await cacheKey("google", "gemini-2.5-flash", { generationConfig: { maxOutputTokens: 64 }, contents: [{ parts: [{ text: "hi" }], role: "user" }] });
    expect(one).toMatch(/^[0-9a-f]{64}$/);
    expect(two).toBe(one);
    expect(await cacheKey("google", "gemma-3-27b-it", { contents: [{ role: "user", parts: [{ text: "hi" }] }], generationConfig: { maxOutputTokens: 64 } })).not.toBe(one);
    expect(await cacheKey("google", "gemini-2.5-flash", { contents: [{ role: "user", parts: [{ text: "hi!" }] }], generationConfig: { maxOutputTokens: 64 } })).not.toBe(one);
  });

  it("leaves out the gateway's service tier", () => {
    expect(keyedRequest({ model: "m", messages: [], options: {}, serviceTier: "flex" })).toEqual({ model: "m", messages: [], options: {} });
  });
});
