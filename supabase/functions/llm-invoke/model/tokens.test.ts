import { describe, expect, it } from "vitest";
import type { Content } from "../contract.ts";
import { estimateInputTokens, estimateTextTokens, REQUEST_OVERHEAD, TURN_OVERHEAD } from "./tokens.ts";

// The simulator's rule (shared/google-sim/tokens.ts), restated so that this test pins the contract.
function simulatorTokens(contents: readonly Content[], system?: string): number {
  const texts = contents.flatMap((c) => c.parts.map((p) => p.text));
  if (system !== undefined) texts.push(system);
  const bytes = texts.reduce((n, t) => n + new TextEncoder().encode(t).length, 0);
  return Math.ceil(bytes / 4);
}

const user = (...texts: string[]): Content => ({ role: "user", parts: texts.map((text) => ({ text })) });

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
    const contents = [user("abc"), { role: "model" as const, parts: [{ text: "abc" }] }];
    expect(estimateInputTokens({ contents })).toBe(REQUEST_OVERHEAD + 2 * TURN_OVERHEAD + 2);
    expect(estimateInputTokens({ contents, system: "abc" })).toBe(REQUEST_OVERHEAD + 3 * TURN_OVERHEAD + 3);
  });

  it("is never below the simulator's count, and over-estimates Russian text", () => {
    const samples: Array<[Content[], string | undefined]> = [
      [[user("Hello, world!")], undefined],
      [[user("Концерт в субботу в 19:00, вход 500 ₽. Что взять с собой?")], "Отвечай кратко."],
      [[user("🎉🎶".repeat(50))], undefined],
      [[user("x".repeat(100_000))], "y".repeat(10_000)],
      [[user("1234567890".repeat(100))], undefined],
      [[user("中文文本", "日本語"), user("한국어")], undefined],
    ];
    for (const [contents, system] of samples) {
      expect(estimateInputTokens({ contents, system })).toBeGreaterThanOrEqual(simulatorTokens(contents, system));
    }
    const russian = [user("Фестиваль уличной еды пройдёт в парке Горького с пятницы по воскресенье.")];
    // Real tokenizers give ~3 chars/token for Russian: 72 chars -> ~24 tokens. The estimate must exceed that.
    expect(estimateInputTokens({ contents: russian })).toBeGreaterThan(24 * 1.5);
  });
});
