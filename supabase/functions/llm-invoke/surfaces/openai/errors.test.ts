// error: the gateway's errors → OpenAI's error object and a 429's retry headers.
import { describe, expect, it } from "vitest";
import { envelope } from "../../../_shared/envelope.ts";
import { GatewayError, rateLimited } from "../../../_shared/errors.ts";
import { openAiErrorObject, openAiSurface } from "../openai.ts";
import { chat, parse, refusal, REQUEST_ID } from "./test-fixtures.ts";

describe("error", () => {
  it("gives a 429 OpenAI's rate limit shape and both retry headers, seconds rounded up", () => {
    const shaped = openAiSurface.error(rateLimited("rpm", 1500), REQUEST_ID);
    expect(shaped.headers).toEqual({ "retry-after-ms": "1500", "Retry-After": "2" });
    expect(shaped.body).toEqual({
      error: {
        message: "No capacity for this model now (limit: rpm); retry in 1500 ms.",
        type: "rate_limit_error",
        param: null,
        code: "rate_limit_exceeded",
        limit: "rpm",
        retry_after_ms: 1500,
        request_id: REQUEST_ID,
      },
    });
    expect(openAiSurface.error(rateLimited("rpd", null), REQUEST_ID).headers).toEqual({});
  });

  it("reaches the caller through the envelope with one Retry-After value and the exact retry-after-ms", async () => {
    const handle = envelope(
      { name: "llm-invoke", errorShape: () => openAiSurface.error, logLine: () => {}, newRequestId: () => REQUEST_ID },
      () => Promise.reject(rateLimited("tpm", 2001)),
    );
    const response = await handle(new Request("http://x/llm-invoke/v1/chat/completions", { method: "POST" }));
    expect(response.status).toBe(429);
    expect(response.headers.get("retry-after-ms")).toBe("2001");
    expect(response.headers.get("retry-after")).toBe("3");
    expect(((await response.json()) as { error: { type: string } }).error.type).toBe("rate_limit_error");
  });

  it("an unknown model is OpenAI's 404 model_not_found with param model, pointing at GET …/v1/models", async () => {
    const handle = envelope(
      { name: "llm-invoke", errorShape: () => openAiSurface.error, logLine: () => {}, newRequestId: () => REQUEST_ID },
      () => Promise.reject(new GatewayError("unknown_model", "Unknown model gpt-9.", { details: { model: "gpt-9" } })),
    );
    const response = await handle(new Request("http://x/llm-invoke/v1/chat/completions", { method: "POST" }));
    expect(response.status).toBe(404);
    const { error } = (await response.json()) as { error: Record<string, unknown> };
    expect(error).toMatchObject({ type: "invalid_request_error", param: "model", code: "model_not_found" });
    expect(error.message).toContain("/v1/models");
  });

  it("names the type by status, keeps the gateway's code, and the field as param", () => {
    const cases: Array<[GatewayError, string, string | null]> = [
      [
        new GatewayError("invalid_request", "x", { details: { field: "messages[0]" } }),
        "invalid_request_error",
        "messages[0]",
      ],
      [new GatewayError("token_expired", "x"), "authentication_error", null],
      [new GatewayError("model_not_allowed", "x"), "permission_error", null],
      [new GatewayError("not_found", "x"), "not_found_error", null],
      [new GatewayError("request_in_progress", "x"), "conflict_error", null],
      [new GatewayError("body_too_large", "x"), "invalid_request_error", null],
      [new GatewayError("unavailable", "x"), "api_error", null],
      [new GatewayError("upstream_timeout", "x"), "api_error", null],
    ];
    for (const [error, type, param] of cases) {
      expect(openAiErrorObject(error, REQUEST_ID)).toMatchObject({ type, param, code: error.code });
    }
    // A schema error names its first issue's path.
    const schema = refusal(() => parse(chat({ temperature: 9 })));
    expect(openAiErrorObject(schema, REQUEST_ID).param).toBe("temperature");
  });
});
