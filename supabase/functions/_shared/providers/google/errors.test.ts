import { describe, expect, it } from "vitest";
import { classifyGoogleHttpError, isPerDayQuota, parseDuration, retryDelayFromMessage } from "./errors.ts";
import { upstreamFailure } from "../../upstream/port.ts";

const T = "type.googleapis.com/google.rpc.";

function quota429(quotaIds: string[], retryDelay: string | null, messageDelay = retryDelay) {
  return {
    error: {
      code: 429,
      status: "RESOURCE_EXHAUSTED",
      message: "You exceeded your current quota, please check your plan and billing details." +
        (messageDelay === null ? "" : `\nPlease retry in ${messageDelay}.`),
      // Deliberately not in Google's usual order: the parser must look entries up by @type.
      details: [
        { "@type": `${T}Help`, links: [{ url: "https://ai.google.dev/gemini-api/docs/rate-limits" }] },
        ...(retryDelay === null ? [] : [{ "@type": `${T}RetryInfo`, retryDelay }]),
        {
          "@type": `${T}QuotaFailure`,
          violations: quotaIds.map((quotaId) => ({
            quotaMetric: "generativelanguage.googleapis.com/generate_content_free_tier_requests",
            quotaId,
            quotaDimensions: { location: "global", model: "gemma-3-27b" },
            quotaValue: "30",
          })),
        },
      ],
    },
  };
}

describe("durations", () => {
  it.each([
    ["22s", 22_000],
    ["10.689924287s", 10_690],
    ["0.5s", 500],
    ["0.000000001s", 1],
    ["0s", 0],
  ])("parses %s", (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each([["22"], ["-1s"], ["1.5m"], [22], [null]])("rejects %s", (value) => {
    expect(parseDuration(value)).toBeNull();
  });

  it("reads the wait from the message text", () => {
    expect(retryDelayFromMessage("Quota exceeded. Please retry in 10.689924287s.")).toBe(10_690);
    expect(retryDelayFromMessage("Please retry in 250ms")).toBe(250);
    expect(retryDelayFromMessage("try later")).toBeNull();
  });

  it("knows per-day quota ids", () => {
    expect(isPerDayQuota("GenerateRequestsPerDayPerProjectPerModel-FreeTier")).toBe(true);
    expect(isPerDayQuota("GenerateRequestsPerMinutePerProjectPerModel-FreeTier")).toBe(false);
  });
});

describe("classifyGoogleHttpError", () => {
  it("reads RetryInfo and the quota of a per-minute 429", () => {
    const c = classifyGoogleHttpError(429, quota429(["GenerateRequestsPerMinutePerProjectPerModel-FreeTier"], "22s"));
    expect(c).toMatchObject({
      class: "rate_limited",
      httpStatus: 429,
      status: "RESOURCE_EXHAUSTED",
      quotaId: "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
      retryAfterMs: 22_000,
      perDay: false,
    });
  });

  it("flags a per-day violation and prefers it over a per-minute one", () => {
    const c = classifyGoogleHttpError(
      429,
      quota429(
        ["GenerateContentInputTokensPerModelPerMinute-FreeTier", "GenerateRequestsPerDayPerProjectPerModel-FreeTier"],
        "3s",
      ),
    );
    expect(c.perDay).toBe(true);
    expect(c.quotaId).toBe("GenerateRequestsPerDayPerProjectPerModel-FreeTier");
    expect(c.quotaIds).toHaveLength(2);
  });

  it("takes the later wait when RetryInfo is truncated to whole seconds", () => {
    const c = classifyGoogleHttpError(429, quota429(["X"], "10s", "10.689924287s"));
    expect(c.retryAfterMs).toBe(10_690);
  });

  it("falls back to the message when RetryInfo is missing, and to null when both are", () => {
    expect(classifyGoogleHttpError(429, quota429(["X"], null, "7.2s")).retryAfterMs).toBe(7200);
    expect(classifyGoogleHttpError(429, quota429(["X"], null, null)).retryAfterMs).toBeNull();
  });

  it("treats a 429 without details as rate limited too", () => {
    const c = classifyGoogleHttpError(429, {
      error: { code: 429, status: "RESOURCE_EXHAUSTED", message: "Resource has been exhausted (e.g. check quota)." },
    });
    expect(c).toMatchObject({ class: "rate_limited", quotaId: null, retryAfterMs: null, perDay: false });
  });

  it("recognises an invalid key by ErrorInfo.reason", () => {
    const c = classifyGoogleHttpError(400, {
      error: {
        code: 400,
        status: "INVALID_ARGUMENT",
        message: "API key not valid. Please pass a valid API key.",
        details: [{ "@type": `${T}ErrorInfo`, reason: "API_KEY_INVALID", domain: "googleapis.com" }],
      },
    });
    expect(c).toMatchObject({ class: "invalid_key", reason: "API_KEY_INVALID" });
  });

  it("treats 401/403 as a key problem", () => {
    expect(classifyGoogleHttpError(403, { error: { code: 403, status: "PERMISSION_DENIED", message: "no" } }).class)
      .toBe("invalid_key");
  });

  it("does not retry other 4xx", () => {
    const c = classifyGoogleHttpError(400, {
      error: {
        code: 400,
        status: "INVALID_ARGUMENT",
        message: "Developer instruction is not enabled for models/gemma-3-27b-it",
      },
    });
    expect(c.class).toBe("client_error");
    expect(classifyGoogleHttpError(404, { error: { code: 404, status: "NOT_FOUND", message: "x" } }).class)
      .toBe("client_error");
  });

  it.each([500, 502, 503, 504, 408])("retries %i", (status) => {
    expect(classifyGoogleHttpError(status, { error: { code: status, message: "overloaded" } }).class)
      .toBe("retryable");
  });

  it("copes with a non-JSON body and odd details", () => {
    const c = classifyGoogleHttpError(502, "<html>Bad Gateway</html>");
    expect(c).toMatchObject({ class: "retryable", message: "<html>Bad Gateway</html>" });
    const odd = classifyGoogleHttpError(429, {
      error: { details: [null, 3, { "@type": 5 }, { "@type": `${T}QuotaFailure`, violations: "x" }] },
    });
    expect(odd).toMatchObject({ class: "rate_limited", quotaIds: [], message: "HTTP 429" });
  });

  it("never returns the key, even if Google echoes it", () => {
    const key = "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q";
    const c = classifyGoogleHttpError(400, { error: { message: `bad key ${key} and sim-key-1` } }, {
      secrets: ["sim-key-1"],
    });
    expect(c.message).not.toContain(key);
    expect(c.message).not.toContain("sim-key-1");
  });
});

describe("upstreamFailure", () => {
  it("marks transport failures retryable with their kind", () => {
    expect(upstreamFailure("timeout", "no answer in 30000 ms")).toMatchObject({
      class: "retryable",
      kind: "timeout",
      httpStatus: null,
    });
    expect(upstreamFailure("malformed", "Unexpected token <", { httpStatus: 200 }).httpStatus).toBe(200);
  });
});
