import { describe, expect, it } from "vitest";
import { GatewayError } from "../../_shared/errors.ts";
import { parseInvokeRequest } from "../surfaces/native/request.ts";
import { openAiSurface } from "../surfaces/openai.ts";
import { parseMessages } from "../surfaces/anthropic/request.ts";
import { DEFAULT_REQUEST_LIMITS, type NormalizedRequest } from "../contract.ts";
import { refusal } from "../../../../tests/support/refusal.ts";
import { capOutputTokens, requireModel, reserveCallerOf, scopeOf, visibleModels } from "./caller.ts";

describe("a caller's scope", () => {
  const scope = scopeOf({ status: "ok", models: ["gemini-2.5-flash"], maxOutputTokens: 256 });

  it("books a service caller by its label and a token by its hash", () => {
    expect(reserveCallerOf({ kind: "service", label: "batch" })).toEqual({ kind: "service", name: "batch" });
    expect(reserveCallerOf({ kind: "token", tokenHash: "h", label: "token" })).toEqual({
      kind: "token",
      tokenHash: "h",
    });
  });

  it("lists and allows only a token's own models; a service caller has no limit", () => {
    const rows = [{ model: "gemini-2.5-flash" }, { model: "gemini-2.5-pro" }];
    expect(visibleModels(rows, scope)).toEqual([{ model: "gemini-2.5-flash" }]);
    expect(visibleModels(rows, {})).toEqual(rows);
    expect(() => requireModel(scope, "gemini-2.5-flash")).not.toThrow();
    expect(() => requireModel(scope, "gemini-2.5-pro")).toThrow(GatewayError);
    expect(() => requireModel({}, "gemini-2.5-pro")).not.toThrow();
  });

  it("sends the cap when none is asked, refuses more than it", () => {
    const ask = (maxOutputTokens?: number) =>
      parseInvokeRequest({
        model: "gemini-2.5-flash",
        prompt: "x",
        generationConfig: maxOutputTokens === undefined ? {} : { maxOutputTokens },
      });
    expect(capOutputTokens(ask(), scope).options.maxOutputTokens).toBe(256);
    expect(capOutputTokens(ask(100), scope).options.maxOutputTokens).toBe(100);
    expect(() => capOutputTokens(ask(1000), scope)).toThrow(/^generationConfig\.maxOutputTokens is 1000; .*at most 256/);
    expect(capOutputTokens(ask(1000), {}).options.maxOutputTokens).toBe(1000);
  });

  it("names the cap by the route's own field, with the same details on every route", () => {
    const refused = (request: NormalizedRequest) => refusal(() => capOutputTokens(request, scope));
    const openai = (body: Record<string, unknown>) =>
      openAiSurface.parse({ body, headers: new Headers(), limits: DEFAULT_REQUEST_LIMITS });
    const chat = { model: "gemini-2.5-flash", messages: [{ role: "user", content: "x" }] };
    const details = { field: "generationConfig.maxOutputTokens", max_output_tokens: 256 };
    for (const [field, request] of [
      ["max_tokens", openai({ ...chat, max_tokens: 1000 })],
      ["max_completion_tokens", openai({ ...chat, max_completion_tokens: 1000 })],
      ["max_tokens", parseMessages({ body: { ...chat, max_tokens: 1000 }, headers: new Headers(), limits: DEFAULT_REQUEST_LIMITS })],
    ] as const) {
      const e = refused(request);
      expect(e.message).toMatch(new RegExp(`^${field} is 1000; `));
      expect(e.details).toEqual(details);
    }
  });
});
