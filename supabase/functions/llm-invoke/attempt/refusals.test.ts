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
