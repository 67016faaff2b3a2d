import { describe, expect, it } from "vitest";
import type { HubMessage } from "../../_shared/upstream/hub.ts";
import { estimateInputTokens, estimateTextTokens, REQUEST_OVERHEAD, TURN_OVERHEAD } from "./tokens.ts";

// The simulator's rule (shared/google-sim/tokens.ts), restated so that this test pins the contract.
function simulatorTokens(messages: readonly HubMessage[], system?: string): number {
  const texts = messages.flatMap((c) => c.parts.map((p) => (p.type === "text" ? p.text : "")));
  if (system !== undefined) texts.push(system);
  const bytes = texts.reduce((n, t) => n + new TextEncoder().encode(t).length, 0);
  return Math.ceil(bytes / 4);
}

const user = (...texts: string[]): HubMessage => ({ role: "user", parts: texts.map((text) => ({ type: "text", text })) });

describe("estimateTextTokens", () => {
  it("counts three bytes per token for ASCII text", () => {
    expect(estimateTextTokens("abcdef")).toBe(2);
    expect(estimateTextTokens("abcdefg")).toBe(3);
    expect(estimateTextTokens("")).toBe(0);
  });

  it("counts Cyrillic by UTF-8 bytes, i.e. about 2/3 token per letter", () => {
    expect(estimateTextTokens("Привет")).toBe(4); // 12 bytes
  });

  it("counts each digit as a token", () => {
    expect(estimateTextTokens("2025")).toBe(4);
    expect(estimateTextTokens("21.11.2025 19:00")).toBe(12 + 2); // 12 digits + 4 other bytes
  });
});

describe("estimateInputTokens", () => {
  it("adds per-request and per-turn overhead, and the system prompt as a turn", () => {
    const messages: HubMessage[] = [user("abc"), { role: "assistant", parts: [{ type: "text", text: "abc" }] }];
    expect(estimateInputTokens({ messages })).toBe(REQUEST_OVERHEAD + 2 * TURN_OVERHEAD + 2);
    expect(estimateInputTokens({ messages, system: "abc" })).toBe(REQUEST_OVERHEAD + 3 * TURN_OVERHEAD + 3);
  });

  it("is never below the simulator's count, and over-estimates Russian text", () => {
    const samples: Array<[HubMessage[], string | undefined]> = [
      [[user("Hello, world!")], undefined],
      [[user("Концерт в субботу в 19:00, вход 500 ₽. Что взять с собой?")], "Отвечай кратко."],
      [[user("🎉🎶".repeat(50))], undefined],
      [[user("x".repeat(100_000))], "y".repeat(10_000)],
      [[user("1234567890".repeat(100))], undefined],
      [[user("中文文本", "日本語"), user("한국어")], undefined],
    ];
    for (const [messages, system] of samples) {
      expect(estimateInputTokens({ messages, system })).toBeGreaterThanOrEqual(simulatorTokens(messages, system));
    }
    const russian = [user("Фестиваль уличной еды пройдёт в парке Горького с пятницы по воскресенье.")];
    // Real tokenizers give ~3 chars/token for Russian: 72 chars -> ~24 tokens. The estimate must exceed that.
    expect(estimateInputTokens({ messages: russian })).toBeGreaterThan(24 * 1.5);
  });
});
