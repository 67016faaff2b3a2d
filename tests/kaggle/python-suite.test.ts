// The Python suite's counts come from unittest's summary: every shape it prints is read right.
import { describe, expect, it } from "vitest";
import { parseUnittestSummary } from "./python-suite.ts";

describe("parseUnittestSummary", () => {
  it.each([
    ["Ran 29 tests in 4.489s\n\nOK\n", { passed: 29, failed: 0, skipped: 0 }],
    ["Ran 29 tests in 4.4s\n\nOK (skipped=2)\n", { passed: 27, failed: 0, skipped: 2 }],
    ["Ran 10 tests in 1s\n\nFAILED (failures=1, errors=2, skipped=1)\n", { passed: 6, failed: 3, skipped: 1 }],
    ["Ran 5 tests in 1s\n\nFAILED (errors=1, expected failures=1, unexpected successes=1)\n", { passed: 2, failed: 2, skipped: 1 }],
    ["Ran 0 tests in 0s\n\nFAILED (errors=1)\n", { passed: 0, failed: 1, skipped: 0 }],
  ])("%j", (text, counts) => {
    expect(parseUnittestSummary(`test_x ... ok\n------\n${text}`)).toMatchObject({ suite: "python", ...counts });
  });

  it("reports a problem when there is no summary or no test ran", () => {
    expect(parseUnittestSummary("Traceback ...").problem).toBe("unittest printed no summary");
    expect(parseUnittestSummary("Ran 0 tests in 0s\n\nOK\n").problem).toBe("no Python test ran");
  });
});
