import { describe, expect, it } from "vitest";
import { GatewayError } from "../../_shared/errors.ts";
import type { NormalizedRequest } from "../contract.ts";
import { checkRefusedOptions } from "./refused-options.ts";

const CLAUDE_55 = { model: "claude-sonnet-5-5", refusesThinkingBudget: true, refusesSampling: true };
const ANTHROPIC_WORDS = { temperature: "temperature", topP: "top_p", topK: "top_k", thinkingBudget: "thinking.budget_tokens" };

function refusal(caps: Parameters<typeof checkRefusedOptions>[0], req: Pick<NormalizedRequest, "options" | "optionFields">) {
  try {
    checkRefusedOptions(caps, req);
  } catch (error) {
    expect(error).toBeInstanceOf(GatewayError);
    return error as GatewayError;
  }
  return undefined;
}

describe("checkRefusedOptions", () => {
  it("refuses a positive thinking budget by the caller's field, with stable details", () => {
    const e = refusal(CLAUDE_55, { options: { thinking: { budgetTokens: 2048 } }, optionFields: ANTHROPIC_WORDS });
    expect(e?.code).toBe("unsupported_feature");
    expect(e?.status).toBe(400);
    expect(e?.message).toContain("thinking.budget_tokens");
    expect(e?.details).toEqual({
      model: "claude-sonnet-5-5",
      feature: "thinking_budget",
      field: "generationConfig.thinkingConfig.thinkingBudget",
    });
  });

  it("passes thinking off (0), the model's own choice (-1) and thoughts asked without a budget", () => {
    for (const thinking of [{ budgetTokens: 0 }, { budgetTokens: -1 }, { includeThoughts: true }]) {
      expect(refusal(CLAUDE_55, { options: { thinking } })).toBeUndefined();
    }
  });

  it("refuses sampling other than the defaults, naming the field and the value; the defaults pass", () => {
    expect(refusal(CLAUDE_55, { options: { temperature: 1, topP: 1 } })).toBeUndefined();
    const hot = refusal(CLAUDE_55, { options: { temperature: 0.3 }, optionFields: ANTHROPIC_WORDS });
    expect(hot?.message).toBe(
      "claude-sonnet-5-5 takes temperature only at its default, 1 (asked: 0.3): it samples as it decides; omit it.",
    );
    expect(hot?.details).toMatchObject({ feature: "sampling", field: "generationConfig.temperature" });
    const topK = refusal(CLAUDE_55, { options: { topK: 40 } });
    expect(topK?.message).toContain("takes no generationConfig.topK (asked: 40)");
  });

  it("a row that refuses nothing, or one thing only, passes the rest", () => {
    const options = { temperature: 0.2, thinking: { budgetTokens: 4096 } };
    expect(refusal({ model: "claude-sonnet-4-5-20250929" }, { options })).toBeUndefined();
    expect(refusal({ ...CLAUDE_55, refusesSampling: false }, { options })?.details).toMatchObject({ feature: "thinking_budget" });
    expect(refusal({ ...CLAUDE_55, refusesThinkingBudget: false }, { options })?.details).toMatchObject({ feature: "sampling" });
  });
});
