import { describe, expect, it } from "vitest";
import { GatewayError } from "../../../_shared/errors.ts";
import { DEFAULT_REQUEST_LIMITS } from "../../contract.ts";
import { callOptionsFromHeaders } from "./call-options.ts";

const read = (headers: Record<string, string>) => callOptionsFromHeaders(new Headers(headers), DEFAULT_REQUEST_LIMITS);

function refusal(headers: Record<string, string>): GatewayError {
  try {
    read(headers);
  } catch (error) {
    if (error instanceof GatewayError) return error;
    throw error;
  }
  throw new Error("expected a refusal");
}

describe("the gateway's options as headers (routes that speak another API's body)", () => {
  it("defaults as the native route: WAIT with the default wait", () => {
    expect(read({})).toEqual({ mode: "WAIT", maxWaitMs: DEFAULT_REQUEST_LIMITS.defaultMaxWaitMs });
  });

  it("reads every option, the wait capped by the budget and zero for NO_WAIT", () => {
    expect(read({
      "x-eve-mode": "wait",
      "x-eve-max-wait-ms": "999999",
      "x-eve-request-id": "bot-7f3a",
      "x-eve-priority": "Batch",
      "x-eve-fallback-models": "models/gemini-2.5-flash-lite, gemma-3-27b",
    })).toEqual({
      mode: "WAIT",
      maxWaitMs: DEFAULT_REQUEST_LIMITS.maxWaitBudgetMs,
      requestId: "bot-7f3a",
      priority: "batch",
      fallbackModels: ["gemini-2.5-flash-lite", "gemma-3-27b"],
    });
    expect(read({ "x-eve-mode": "NO_WAIT", "x-eve-max-wait-ms": "5000" })).toEqual({ mode: "NO_WAIT", maxWaitMs: 0 });
  });

  it.each([
    ["x-eve-mode", "later"],
    ["x-eve-max-wait-ms", "-1"],
    ["x-eve-max-wait-ms", "1.5"],
    ["x-eve-request-id", "a b<script>"],
    ["x-eve-priority", "urgent"],
    ["x-eve-fallback-models", "a,b,c,d"],
    ["x-eve-fallback-models", "../etc"],
  ])("refuses %s: %s with invalid_request naming the header", (header, value) => {
    const error = refusal({ [header]: value });
    expect(error.code).toBe("invalid_request");
    expect(error.details).toEqual({ header });
  });
});
