// OpenAI's failures by structure: status, type, code and the x-ratelimit-* headers; the message only
// for a wait no header gives, in either unit.
import { describe, expect, it } from "vitest";
import {
  classifyOpenAiHttpError,
  parseOpenAiDuration,
  statedLimitsOf,
  waitFromHeaders,
  waitFromMessage,
} from "./errors.ts";

const body = (type: string | null, code: string | null, message = "words") => ({
  error: { message, type, param: null, code },
});

describe("waits", () => {
  it("reads OpenAI's durations", () => {
    expect(parseOpenAiDuration("120ms")).toBe(120);
    expect(parseOpenAiDuration("18.642s")).toBe(18_642);
    expect(parseOpenAiDuration("6m0s")).toBe(360_000);
    expect(parseOpenAiDuration("1h2m3.5s")).toBe(3_723_500);
    for (const bad of ["", "6 m", "1x", "s", "12", null]) expect(parseOpenAiDuration(bad)).toBeNull();
  });

  it("takes the reset of the limit the answer names, else of the one spent, else the later", () => {
    const h = new Headers({
      "x-ratelimit-reset-requests": "2s",
      "x-ratelimit-reset-tokens": "9.5s",
      "x-ratelimit-remaining-requests": "0",
      "x-ratelimit-remaining-tokens": "100",
    });
    expect(waitFromHeaders(h, "tokens")).toBe(9_500);
    expect(waitFromHeaders(h, "requests")).toBe(2_000);
    expect(waitFromHeaders(h, null)).toBe(2_000);
    h.set("x-ratelimit-remaining-requests", "5");
    expect(waitFromHeaders(h, null)).toBe(9_500);
    expect(waitFromHeaders(new Headers(), "tokens")).toBeNull();
  });

  it("reads a message's wait in seconds or milliseconds", () => {
    expect(waitFromMessage("… Please try again in 6ms. Visit …")).toBe(6);
    expect(waitFromMessage("Please try again in 18.642s.")).toBe(18_642);
    expect(waitFromMessage("Rate limit reached.")).toBeNull();
  });
});

describe("classifyOpenAiHttpError", () => {
  const none = new Headers();
  it("tells money from a rate limit by type or code alone", () => {
    for (const b of [body("insufficient_quota", "insufficient_quota"), body("insufficient_quota", null)]) {
      expect(classifyOpenAiHttpError(429, b, none)).toMatchObject({
        class: "rate_limited",
        quotaCause: "credits_depleted",
        retryAfterMs: null,
      });
    }
    const limited = classifyOpenAiHttpError(429, body("tokens", "rate_limit_exceeded", "try again in 3s"), none);
    expect(limited).toMatchObject({ class: "rate_limited", quotaCause: "minute", retryAfterMs: 3_000 });
    // The headers win over the message.
    const both = classifyOpenAiHttpError(
      429,
      body("requests", null, "Please try again in 20s."),
      new Headers({ "x-ratelimit-reset-requests": "1.5s" }),
    );
    expect(both.retryAfterMs).toBe(1_500);
  });

  it("401 is the key's, 404 model_not_found the model's, others by status", () => {
    expect(classifyOpenAiHttpError(401, body("invalid_request_error", "invalid_api_key"), none).class)
      .toBe("invalid_key");
    expect(
      classifyOpenAiHttpError(404, body("invalid_request_error", "model_not_found"), none, { model: "gpt-4" }).class,
    )
      .toBe("model_withdrawn");
    // A 404 that does not say model_not_found (a proxy's page) is not a withdrawal.
    expect(classifyOpenAiHttpError(404, "<html>Not Found</html>", none, { model: "gpt-4" }).class).toBe("client_error");
    expect(classifyOpenAiHttpError(400, body("invalid_request_error", null), none).class).toBe("client_error");
    expect(
      classifyOpenAiHttpError(403, body("invalid_request_error", "unsupported_country_region_territory"), none).class,
    )
      .toBe("client_error");
    for (const status of [500, 502, 503, 408, 409]) {
      expect(classifyOpenAiHttpError(status, "<html>bad gateway</html>", none).class).toBe("retryable");
    }
  });

  it("never repeats the key", () => {
    const key = "sk-proj-abcdefghijklmnop0123456789";
    const out = classifyOpenAiHttpError(
      401,
      body("invalid_request_error", "invalid_api_key", `Incorrect API key provided: ${key}.`),
      none,
      { secrets: [key] },
    );
    expect(out.message).not.toContain(key);
  });
});

describe("room on a refusal", () => {
  it("a 400 or a 503 with x-ratelimit-* carries what is left, as a 200 does; none without them", () => {
    const h = new Headers({
      "x-ratelimit-remaining-requests": "499",
      "x-ratelimit-remaining-tokens": "29950",
      "x-ratelimit-reset-requests": "120ms",
      "x-ratelimit-reset-tokens": "100ms",
    });
    for (const status of [400, 503]) {
      expect(classifyOpenAiHttpError(status, body("invalid_request_error", "invalid_value"), h).room)
        .toEqual({ requests: 499, tokens: 29_950, resetMs: 120 });
    }
    expect(classifyOpenAiHttpError(400, body("invalid_request_error", null), new Headers()).room).toBeNull();
  });
});

describe("the limits an answer states (x-ratelimit-limit-*)", () => {
  const stated = (h: Record<string, string>) => statedLimitsOf(new Headers(h));

  it("requests and tokens a minute, each mapped by its reset", () => {
    expect(stated({
      "x-ratelimit-limit-requests": "500",
      "x-ratelimit-limit-tokens": "30000",
      "x-ratelimit-reset-requests": "120ms",
      "x-ratelimit-reset-tokens": "6m0s",
    })).toEqual({ rpm: 500, tpm: 30_000 });
  });

  it("a request limit whose reset is hours away is the day's; a token limit hours away is none of the row's", () => {
    expect(stated({
      "x-ratelimit-limit-requests": "200",
      "x-ratelimit-limit-tokens": "40000",
      "x-ratelimit-reset-requests": "7h12m0s",
      "x-ratelimit-reset-tokens": "3h0m0s",
    })).toEqual({ rpd: 200 });
  });

  it("none stated, or unreadable: undefined; a room carries them", () => {
    expect(stated({})).toBeUndefined();
    expect(stated({ "x-ratelimit-limit-requests": "many" })).toBeUndefined();
    const h = new Headers({
      "x-ratelimit-limit-requests": "6",
      "x-ratelimit-remaining-requests": "5",
      "x-ratelimit-reset-requests": "10s",
    });
    expect(classifyOpenAiHttpError(429, body("requests", null), h).room)
      .toEqual({ requests: 5, tokens: null, resetMs: 10_000, limits: { rpm: 6 } });
  });
});
