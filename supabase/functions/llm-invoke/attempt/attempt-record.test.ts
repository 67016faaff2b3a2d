// What finalize is asked to write for a failed call: the rest each 429 cause asks for.
import { describe, expect, it } from "vitest";
import { classifyGoogleHttpError } from "../../_shared/providers/google/errors.ts";
import { SPEND_CAP_MAX_REST_MS } from "../../_shared/providers/google/quota-cause.ts";
import { classifyOpenAiHttpError } from "../../_shared/providers/openai/errors.ts";
import { failureRecord } from "./attempt-record.ts";

const NOW = Date.parse("2026-11-24T10:00:00Z");

const spendCap = (retryDelay: string) =>
  classifyGoogleHttpError(429, {
    error: {
      code: 429,
      status: "RESOURCE_EXHAUSTED",
      message: "Your billing account has reached its spend-based rate limit for the rolling 10-minute window.",
      details: [{ "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay }],
    },
  });

const record = (error: ReturnType<typeof spendCap>) =>
  failureRecord({ reservationId: "r", latencyMs: 1, error, now: NOW, dayZone: "UTC", defaultCooldownMs: 30_000 });

describe("failureRecord for a spend cap", () => {
  it("rests for the window Google names when its delay is shorter", () => {
    expect(record(spendCap("42s"))).toMatchObject({
      quotaCause: "spend_cap",
      cooldownUntil: new Date(NOW + 10 * 60_000),
      cooldownUntilProviderMidnight: false,
    });
  });

  it("never rests a whole project longer than an hour, whatever delay Google asks for", () => {
    expect(record(spendCap(`${6 * 3600}s`)).cooldownUntil).toEqual(new Date(NOW + SPEND_CAP_MAX_REST_MS));
  });
});

describe("failureRecord's settled size: what the window keeps of a failed call's booking", () => {
  const openAi = (status: number, code: string | null = null) =>
    classifyOpenAiHttpError(status, { error: { message: "no", type: "invalid_request_error", code } }, new Headers());
  const settled = (error: ReturnType<typeof openAi>) =>
    failureRecord({ reservationId: "r", latencyMs: 1, error, now: NOW, dayZone: "UTC", defaultCooldownMs: 30_000, inputTokens: 42 })
      .settledTokens;

  it("a refusal before generating (400, 404, 429) keeps the input only", () => {
    expect([400, 404, 429].map((s) => settled(openAi(s)))).toEqual([42, 42, 42]);
  });

  it("a failure that may come after the provider started (408, 409, 5xx) keeps the whole booking", () => {
    expect([408, 409, 500, 503].map((s) => settled(openAi(s)))).toEqual([null, null, null, null]);
  });

  it("without the booking's input known, nothing is settled", () => {
    expect(failureRecord({ reservationId: "r", latencyMs: 1, error: openAi(400), now: NOW, dayZone: "UTC", defaultCooldownMs: 1 })
      .settledTokens).toBeNull();
  });
});
