// A request too large for one minute of the model's tokens names what is too large (details.field,
// OpenAI's param) and calls the limit what it is (details.tpm_limit).
import { describe, expect, it } from "vitest";
import { finalRefusal } from "./refusals.ts";

const tooLarge = (ctx: { estimatedTokens: number; bookedOutputTokens?: number; imageTokens?: number }) =>
  finalRefusal({ ok: false, limit: "too_large", maxTokens: 30_000, retryAfterMs: null } as never, {
    model: "gpt-4o",
    requestId: "r",
    ...ctx,
  })!;

describe("too large", () => {
  it("blames max_tokens when the input fits and the output booked on top does not", () => {
    const e = tooLarge({ estimatedTokens: 9, bookedOutputTokens: 100_000 });
    expect(e.code).toBe("invalid_request");
    expect(e.details).toEqual({
      field: "max_tokens",
      estimated_tokens: 9,
      booked_output_tokens: 100_000,
      tpm_limit: 30_000,
    });
    expect(e.message).toContain("at most 29991 output tokens");
    expect(e.message).not.toContain("input is estimated");
  });

  it("blames the images when the text alone would fit, else the input", () => {
    expect(tooLarge({ estimatedTokens: 31_000, imageTokens: 30_500 }).details).toMatchObject({
      field: "image_url",
      image_tokens: 30_500,
    });
    const input = tooLarge({ estimatedTokens: 31_000 });
    expect(input.details).toEqual({ field: "messages", estimated_tokens: 31_000, tpm_limit: 30_000 });
    expect(input.message).toContain("Shorten it or split it");
  });
});

describe("too large for a model that counts input and output apart (ITPM, OTPM)", () => {
  const tooLargeForBuckets = (ctx: { estimatedTokens: number; bookedOutputTokens?: number }) =>
    finalRefusal({ ok: false, limit: "too_large", maxTokens: 30_000, maxOutputTokens: 8_000, retryAfterMs: null,
      retryAt: null }, {
      model: "claude-sonnet-4-5",
      requestId: "r",
      ...ctx,
    })!;

  it("blames max_tokens when the answer asked for is more than a minute of OTPM, whatever the input", () => {
    const e = tooLargeForBuckets({ estimatedTokens: 9, bookedOutputTokens: 10_000 });
    expect(e.code).toBe("invalid_request");
    expect(e.details).toEqual({ field: "max_tokens", estimated_tokens: 9, booked_output_tokens: 10_000,
      itpm_limit: 30_000, otpm_limit: 8_000 });
    expect(e.message).toContain("at most 8000 (max_tokens)");
  });

  it("blames the input when it is more than a minute of ITPM, the answer not counted in it", () => {
    const e = tooLargeForBuckets({ estimatedTokens: 31_000, bookedOutputTokens: 4_096 });
    expect(e.details).toMatchObject({ field: "messages", itpm_limit: 30_000 });
    expect(e.message).toContain("per-minute input token limit (30000)");
  });
});
