// The answer's size, one figure per model of a chain: what TPM and a budget in money book, and the cap
// sent where a budget in money booked it for a request naming none.
import { describe, expect, it } from "vitest";
import { answerSize, withBookedCap } from "./answer-size.ts";
import type { ModelRequest } from "../contract.ts";

const GEMINI = { profile: { answerTokens: 65_536 } }; // its catalogued output limit; TPM counts input only
const OPENAI = { profile: { answerTokens: 4_096, bookedOutputTokens: 4_096 } };
const UNKNOWN = { profile: {} };

describe("answerSize", () => {
  it("books each model's own answer where the request names none, and TPM only the models that count answers", () => {
    expect(answerSize([GEMINI, OPENAI, UNKNOWN], { options: {} })).toEqual({ perModel: [65_536, 4_096, null], tpmOutput: 4_096 });
    expect(answerSize([GEMINI], { options: {} })).toEqual({ perModel: [65_536], tpmOutput: 0 });
  });

  it("books the caller's own largest answer for every model, times the answers it asks for", () => {
    expect(answerSize([GEMINI, OPENAI, UNKNOWN], { options: { maxOutputTokens: 300, outputCount: 2 } }))
      .toEqual({ perModel: [600, 600, 600], tpmOutput: 600 });
  });
});

describe("withBookedCap", () => {
  const request = (options: ModelRequest["options"]): ModelRequest => ({ model: "m", messages: [], options });
  const size = { perModel: [65_536, 8_192], tpmOutput: 8_192 };

  it("sends the booked answer, per answer asked, where a budget in money booked it and the request names none", () => {
    expect(withBookedCap(request({}), { bookedUsd: 0.01 }, size, 1).options.maxOutputTokens).toBe(8_192);
    expect(withBookedCap(request({ outputCount: 2 }), { bookedUsd: 0.01 }, size, 1).options)
      .toEqual({ outputCount: 2, maxOutputTokens: 4_096 });
  });

  it("leaves the request alone without a budget in money, or where it names its own", () => {
    expect(withBookedCap(request({}), {}, size, 0).options).toEqual({});
    expect(withBookedCap(request({ maxOutputTokens: 10 }), { bookedUsd: 0.01 }, size, 0).options)
      .toEqual({ maxOutputTokens: 10 });
  });
});
