import { describe, expect, it } from "vitest";
import { DEFAULT_REQUEST_LIMITS } from "../../contract.ts";
import { parseMessages } from "./request.ts";

const parse = (body: Record<string, unknown>) =>
  parseMessages({ body, headers: new Headers(), limits: DEFAULT_REQUEST_LIMITS });

describe("parseMessages", () => {
  it("says a tool's input_schema in the hub's one form, JSON Schema as given, and the turns' roles as the hub's", () => {
    const input_schema = { type: "object", properties: { city: { type: ["string", "null"] } }, required: ["city"] };
    const req = parse({
      model: "claude-sonnet-4-5",
      max_tokens: 100,
      tools: [{ name: "get_weather", description: "Weather", input_schema }],
      messages: [
        { role: "user", content: "Oslo?" },
        { role: "assistant", content: "Looking." },
        { role: "user", content: "Thanks" },
      ],
    });
    expect(req.tools).toEqual([{ name: "get_weather", description: "Weather", parameters: input_schema }]);
    expect(req.messages.map((m) => m.role)).toEqual(["user", "assistant", "user"]);
  });

  const toolTurns = (content: unknown, more: Record<string, unknown> = {}) => [
    { role: "user", content: "6 × 7?" },
    { role: "assistant", content: [{ type: "tool_use", id: "toolu_1", name: "multiply", input: { a: 6, b: 7 } }] },
    { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_1", content, ...more }] },
  ];

  it.each([
    ["a string", "42", "42"],
    ["text blocks, joined by lines", [{ type: "text", text: "4" }, { type: "text", text: "2" }], "4\n2"],
  ])("holds a tool_result's content given as %s as text, as the caller gave it", (_, content, text) => {
    const req = parse({ model: "claude-sonnet-4-5", max_tokens: 100, messages: toolTurns(content) });
    expect(req.messages[2]!.parts).toEqual([{ type: "tool_result", id: "toolu_1", name: "multiply", result: text }]);
    expect(req.only).toBeUndefined();
  });

  it("holds is_error as the result's error, and lists an image inside a tool_result for another provider to refuse", () => {
    const failed = parse({ model: "m", max_tokens: 100, messages: toolTurns("no such number", { is_error: true }) });
    expect(failed.messages[2]!.parts[0]).toMatchObject({ result: "no such number", error: true });
    const image = { type: "image", source: { type: "base64", media_type: "image/png", data: "AAAA" } };
    const pictured = parse({ model: "m", max_tokens: 100, messages: toolTurns([{ type: "text", text: "42" }, image]) });
    expect(pictured.only?.fields.map((f) => f.field)).toEqual(["messages[2].content[0].content"]);
  });
});
