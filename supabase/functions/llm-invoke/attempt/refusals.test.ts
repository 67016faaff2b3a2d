// A request too large for one minute of the model's tokens names what is too large (details.field,
// OpenAI's param) and calls the limit what it is (details.tpm_limit).
import { describe, expect, it } from "vitest";
import { exhausted, finalRefusal, quotaRefusal } from "./refusals.ts";
import { classifyAnthropicHttpError } from "../../_shared/providers/anthropic/errors.ts";
import { providerDirectory } from "../../_shared/providers/directory.ts";
import { BUILT_IN_PROVIDERS } from "../../_shared/providers/registry.ts";

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

describe("a batch of more requests than the minute or the day holds", () => {
  const turn = "2026-11-22T08:00:05+00:00";
  const over = (per: "minute" | "day", max: number) =>
    finalRefusal({ ok: false, limit: "too_large", retryAfterMs: per === "day" ? 3_600_000 : null,
      retryAt: per === "day" ? turn : null, refusalCause: per === "day" ? "over_rpd" : "over_rpm",
      requests: { count: 30, max, per } }, { model: "batched-model", requestId: "r", estimatedTokens: 9 })!;

  it("over the minute: 400 invalid_request, it can never pass as it is", () => {
    const e = over("minute", 20);
    expect(e.status).toBe(400);
    expect(e.code).toBe("invalid_request");
    expect(e.details).toEqual({ field: "input", inputs: 30, max_inputs: 20, per: "minute" });
    expect(e.extra).toEqual({ cause: "over_rpm" });
  });

  it("over the day: the day's 429 (limit rpd), Retry-After at the turn, naming the room left and the count", () => {
    const e = over("day", 20);
    expect(e.status).toBe(429);
    expect(e.code).toBe("rate_limited");
    expect(e.extra).toEqual({ limit: "rpd", retry_after_ms: 3_600_000, cause: "over_rpd" });
    expect(e.headers).toEqual({ "Retry-After": "3600" });
    expect(e.details).toEqual({ inputs: 30, max_inputs: 20, per: "day", retry_at: turn });
    expect(e.message).toContain("30 inputs are 30 requests");
    expect(e.message).toContain(`has 20 requests left of its provider's day (until ${turn})`);
  });

  it("over a day with nothing left: no room until its turn, never 'send at most 0 inputs'", () => {
    const e = over("day", 0);
    expect(e.status).toBe(429);
    expect(e.message).toContain(`the day has no room until its turn (${turn})`);
    expect(e.message).not.toContain("at most 0");
  });
});

describe("money in the provider's words", () => {
  const directory = providerDirectory(BUILT_IN_PROVIDERS, () => undefined);
  const anthropic = directory.upstream("anthropic")!;
  const google = directory.upstream("google")!;

  it("a cooldown's money cause is said as the serving provider says it, the cause code beside it", () => {
    const refusal = { limit: "cooldown", retryAfterMs: 3_599_000, cause: "monthly_cap" } as const;
    const claude = quotaRefusal(refusal, (c) => anthropic.causeWords(c));
    expect(claude.message).toMatch(/spend limit at Anthropic/);
    expect(claude.message).toMatch(/Claude Console/);
    expect(claude.extra).toMatchObject({ limit: "cooldown", cause: "monthly_cap", retry_after_ms: 3_599_000 });
    expect(claude.headers).toEqual({ "Retry-After": "3599" });
    expect(quotaRefusal(refusal, (c) => google.causeWords(c)).message).toMatch(/project's monthly spending cap at Google/);
    // Without a provider's words: the gateway's own, which name no provider's product.
    expect(quotaRefusal(refusal).message).not.toMatch(/Google|Anthropic|Console/);
  });

  it("the last call's money answer names the rest's end, an hour, as Retry-After", () => {
    const noCredit = classifyAnthropicHttpError(400, {
      type: "error",
      error: { type: "invalid_request_error", message: "Your credit balance is too low to access the Anthropic API." },
    }, new Headers());
    const e = exhausted(noCredit, null, null, (c) => anthropic.causeWords(c));
    expect(e.extra).toMatchObject({ limit: "upstream", cause: "credits_depleted", retry_after_ms: 3_600_000 });
    expect(e.headers).toEqual({ "Retry-After": "3600" });
    expect(e.message).toMatch(/credit balance at Anthropic is too low/);
  });
});
