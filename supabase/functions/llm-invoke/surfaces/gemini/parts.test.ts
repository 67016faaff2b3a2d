// A Gemini turn's parts as the gateway checks them: a call's arguments and a response are JSON objects
// (Google refuses anything else), refused by field rather than replaced for another provider's model.
import { describe, expect, it } from "vitest";
import { GatewayError } from "../../../_shared/errors.ts";
import { checkContents } from "./parts.ts";

function refusal(part: unknown): GatewayError {
  try {
    checkContents([{ role: "model", parts: [part] }]);
  } catch (e) {
    return e as GatewayError;
  }
  throw new Error("not refused");
}

describe("checkContents", () => {
  it.each([
    ["a call's arguments as a string", { functionCall: { name: "f", args: "{}" } }, "functionCall.args"],
    ["a call's arguments as a list", { function_call: { name: "f", args: [1] } }, "functionCall.args"],
    ["a response as a string", { functionResponse: { name: "f", response: "plain" } }, "functionResponse.response"],
    ["a response as null", { functionResponse: { name: "f", response: null } }, "functionResponse.response"],
    ["no response", { functionResponse: { name: "f" } }, "functionResponse.response"],
  ])("refuses %s as an invalid request naming the field", (_, part, field) => {
    const e = refusal(part);
    expect(e.code).toBe("invalid_request");
    expect(e.details).toEqual({ field: `contents[0].parts[0].${field}` });
  });

  it("takes a call without arguments and a response that is an object", () => {
    const { contents } = checkContents([
      { role: "model", parts: [{ functionCall: { name: "f" } }] },
      { role: "user", parts: [{ functionResponse: { name: "f", response: { ok: true } } }] },
    ]);
    expect(contents[1]!.parts[0]!.functionResponse).toEqual({ name: "f", response: { ok: true } });
  });
});
