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
});
