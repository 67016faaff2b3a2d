import { describe, expect, it } from "vitest";
import { classifyGoogleHttpError } from "./errors.ts";
import { SPEND_CAP_MAX_REST_MS, SPEND_CAP_WINDOW_MS, statedLimitsOf } from "./quota-cause.ts";
import {
  MONEY_WORDINGS,
  moneyExhausted,
  quotaExceeded,
  SPEND_RATE_WORDINGS,
  spendCapExceeded,
  VIOLATION_LINE_WORDINGS,
} from "../../../../../shared/google-sim/errors.ts";
import { QUOTA_IDS, violation } from "../../../../../shared/google-sim/quota.ts";

const T = "type.googleapis.com/google.rpc.";
const DOCS = "https://ai.google.dev/gemini-api/docs/rate-limits";

/** A Google 429 with QuotaFailure violations ({quotaId, value}) and the message lines Google writes for them. */
function quota429(violations: Array<{ id: string; value?: string; metric?: string }>, model = "gemini-2.5-pro") {
  const lines = violations.map((v) =>
    `* Quota exceeded for metric: ${
      v.metric ?? "generativelanguage.googleapis.com/generate_content_free_tier_requests"
    }, ` +
    `limit: ${v.value ?? "20"}, model: ${model}`
  );
  return {
    error: {
      code: 429,
      status: "RESOURCE_EXHAUSTED",
      message: "You exceeded your current quota, please check your plan and billing details. For more information " +
        `on this error, head to: ${DOCS}. \n${lines.join("\n")}\nPlease retry in 38.2s.`,
      details: [
        { "@type": `${T}Help`, links: [{ url: DOCS }] },
        {
          "@type": `${T}QuotaFailure`,
          violations: violations.map((v) => ({
            quotaMetric: "generativelanguage.googleapis.com/generate_content_free_tier_requests",
            quotaId: v.id,
            quotaDimensions: { location: "global", model },
            ...(v.value === undefined ? {} : { quotaValue: v.value }),
          })),
        },
        { "@type": `${T}RetryInfo`, retryDelay: "38s" },
      ],
    },
  };
}

const cause = (body: unknown, status = 429) => classifyGoogleHttpError(status, body).quotaCause;

describe("the cause of a Google 429", () => {
  it("per minute and per day, by quotaId", () => {
    expect(cause(quota429([{ id: "GenerateRequestsPerMinutePerProjectPerModel-FreeTier" }]))).toBe("minute");
    expect(cause(quota429([{ id: "GenerateContentInputTokensPerModelPerMinute-FreeTier" }]))).toBe("minute");
    expect(cause(quota429([
      { id: "GenerateRequestsPerMinutePerProjectPerModel-FreeTier" },
      { id: "GenerateRequestsPerDayPerProjectPerModel-FreeTier" },
    ]))).toBe("day");
  });

  it("limit: 0, from the message or quotaValue, even when the quotaId is a per-day or per-minute one", () => {
    // As users quote it: no quotaValue in the details, "limit: 0" in the message, a per-day quotaId among them.
    expect(cause(quota429([
      { id: "GenerateContentInputTokensPerModelPerMinute-FreeTier", value: "0" },
      { id: "GenerateRequestsPerDayPerProjectPerModel-FreeTier", value: "0" },
    ]))).toBe("limit_zero");
    const withoutValues = quota429([{ id: "GenerateRequestsPerMinutePerProjectPerModel-FreeTier", value: "0" }]);
    delete (withoutValues.error.details[1] as { violations: Array<{ quotaValue?: string }> }).violations[0]!.quotaValue;
    expect(cause(withoutValues)).toBe("limit_zero");
    // A limit of 05 or 0.5 is not zero.
    expect(cause(quota429([{ id: "GenerateRequestsPerMinutePerProjectPerModel-FreeTier", value: "05" }]))).toBe(
      "minute",
    );
  });

  it("a spend cap, by the word: with the window it names, or Google's documented 10 minutes", () => {
    const spend = (message: string) =>
      classifyGoogleHttpError(429, {
        error: {
          code: 429,
          status: "RESOURCE_EXHAUSTED",
          message,
          details: [{ "@type": `${T}RetryInfo`, retryDelay: "42s" }],
        },
      });
    const named = spend(
      "Your billing account has reached its spend-based rate limit for the rolling 15-minute window.",
    );
    expect(named).toMatchObject({ quotaCause: "spend_cap", spendWindowMs: 15 * 60_000, retryAfterMs: 42_000 });
    expect(spend("Spend limit reached for this project.")).toMatchObject({
      quotaCause: "spend_cap",
      spendWindowMs: SPEND_CAP_WINDOW_MS,
    });
    // A window read from free text never rests the whole project for longer than an hour.
    expect(spend("Spend cap reached for the billing period of 720 hours.").spendWindowMs).toBe(SPEND_CAP_MAX_REST_MS);
  });

  it("per day is the cause's: a limit: 0 with a per-day quotaId is not per day", () => {
    const zero = classifyGoogleHttpError(
      429,
      quota429([{ id: "GenerateRequestsPerDayPerProjectPerModel-FreeTier", value: "0" }]),
    );
    expect(zero).toMatchObject({ quotaCause: "limit_zero", perDay: false });
    const day = classifyGoogleHttpError(429, quota429([{ id: "GenerateRequestsPerDayPerProjectPerModel-FreeTier" }]));
    expect(day).toMatchObject({ quotaCause: "day", perDay: true });
  });

  it("unknown: Google's bare 429, a capacity 429, anything else; null for every other status", () => {
    expect(
      cause({
        error: { code: 429, status: "RESOURCE_EXHAUSTED", message: "Resource has been exhausted (e.g. check quota)." },
      }),
    )
      .toBe("unknown");
    expect(cause({
      error: {
        code: 429,
        status: "RESOURCE_EXHAUSTED",
        message: "No capacity available for model on the server",
        details: [{ reason: "MODEL_CAPACITY_EXHAUSTED" }],
      },
    })).toBe("unknown");
    expect(cause("Too Many Requests")).toBe("unknown");
    expect(cause({ error: { code: 503, status: "UNAVAILABLE", message: "The model is overloaded." } }, 503)).toBeNull();
  });

  it("money, not quota, in every wording the simulator may draw: which money, and no window", () => {
    for (const [kind, wordings] of Object.entries(MONEY_WORDINGS)) {
      for (const [i, message] of wordings.entries()) {
        const e = classifyGoogleHttpError(429, { error: { code: 429, status: "RESOURCE_EXHAUSTED", message } });
        expect(e, `${kind} wording ${i}`).toMatchObject({
          class: "rate_limited",
          quotaCause: kind,
          spendWindowMs: null,
        });
      }
    }
    // As the simulator answers (the run's wording), and Google's own three bodies (google-errors.md).
    expect(cause(moneyExhausted("credits_depleted").body)).toBe("credits_depleted");
    expect(
      cause({
        error: {
          code: 429,
          status: "RESOURCE_EXHAUSTED",
          message:
            "Your project has exceeded its monthly spending cap. Please go to AI Studio at https://ai.studio/spend",
        },
      }),
    )
      .toBe("monthly_cap");
    expect(
      cause({
        error: {
          code: 429,
          status: "RESOURCE_EXHAUSTED",
          message: "Your billing account has exceeded its monthly spending cap…",
        },
      }),
    ).toBe("billing_cap");
    expect(
      cause({
        error: {
          code: 429,
          status: "RESOURCE_EXHAUSTED",
          message: "Your prepayment credits are depleted. Please go to AI Studio at https://ai.studio/projects…",
        },
      }),
    )
      .toBe("credits_depleted");
  });

  it("the spend-based rate limit in every wording: spend_cap, with the window each names", () => {
    for (const [i, word] of SPEND_RATE_WORDINGS.entries()) {
      const e = classifyGoogleHttpError(429, { error: { code: 429, status: "RESOURCE_EXHAUSTED", message: word(15) } });
      expect(e, `wording ${i}`).toMatchObject({ quotaCause: "spend_cap", spendWindowMs: 15 * 60_000 });
    }
    for (let seed = 0; seed < 30; seed++) {
      expect(classifyGoogleHttpError(429, spendCapExceeded(15 * 60_000, 30_000, seed).body), `seed ${seed}`)
        .toMatchObject({ quotaCause: "spend_cap", spendWindowMs: 15 * 60_000 });
    }
  });

  it("limit: 0 in every wording of the violation's line, with quotaValue and without it", () => {
    const v = violation(QUOTA_IDS.rpm, "gemini-3.1-pro", 0);
    for (let seed = 0; seed < 40; seed++) {
      expect(cause(quotaExceeded([v], "38.2s", true, seed).body), `seed ${seed}`).toBe("limit_zero");
    }
    for (const [i, line] of VIOLATION_LINE_WORDINGS.entries()) {
      // As users quote it: the details without quotaValue, only the message's line says 0.
      const message = `You exceeded your current quota.\n${line(v)}\nPlease retry in 38.2s.`;
      const bare = {
        error: {
          code: 429,
          status: "RESOURCE_EXHAUSTED",
          message,
          details: [{ "@type": `${T}QuotaFailure`, violations: [{ quotaId: v.quotaId, quotaMetric: v.quotaMetric }] }],
        },
      };
      expect(cause(bare), `wording ${i}`).toBe("limit_zero");
    }
  });
});

describe("the limits a Google 429 states (QuotaFailure's quotaValue)", () => {
  const stated = (violations: ReturnType<typeof violation>[]) =>
    classifyGoogleHttpError(429, quotaExceeded(violations, "38.2s").body).stated;

  it("per-minute requests rpm, per-minute tokens tpm, per-day requests rpd", () => {
    expect(stated([violation(QUOTA_IDS.rpm, "gemini-2.5-flash", 15)])).toEqual({ rpm: 15 });
    expect(stated([violation(QUOTA_IDS.tpm, "gemini-2.5-flash", 250000)])).toEqual({ tpm: 250_000 });
    expect(stated([violation(QUOTA_IDS.rpd, "gemini-2.5-flash", "1500"), violation(QUOTA_IDS.rpm, "gemini-2.5-flash", 15)]))
      .toEqual({ rpd: 1500, rpm: 15 });
  });

  it("a quota value of 0 (limit_zero) or none states no limit", () => {
    expect(stated([violation(QUOTA_IDS.rpm, "gemini-2.5-pro", 0)])).toBeUndefined();
    expect(statedLimitsOf([{ quotaId: QUOTA_IDS.rpm, quotaValue: null }])).toBeUndefined();
    expect(statedLimitsOf([{ quotaId: "SomethingElse", quotaValue: "9" }])).toBeUndefined();
  });

  it("only a 429 states one", () => {
    expect(classifyGoogleHttpError(503, quotaExceeded([violation(QUOTA_IDS.rpm, "m", 15)], null).body).stated)
      .toBeUndefined();
  });
});
