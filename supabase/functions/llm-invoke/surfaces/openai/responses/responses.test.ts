// The Responses surface alone: its body's refusals by name, the hub turns it makes of input items,
// and its stream's named events, a failure after the 200 included (an `error` event, then
// response.failed, never response.completed).
import { describe, expect, it } from "vitest";
import { GatewayError } from "../../../../_shared/errors.ts";
import type { HubChunk } from "../../../../_shared/upstream/hub.ts";
import type { InvokeResult, InvokeStream } from "../../../attempt/context.ts";
import { DEFAULT_REQUEST_LIMITS } from "../../../contract.ts";
import { responsesSurface } from "../responses.ts";
import { refusal } from "../test-fixtures.ts";
import type { ResponsesRequest } from "./request.ts";

const parse = (body: Record<string, unknown>) =>
  responsesSurface.parse({ body, headers: new Headers(), limits: DEFAULT_REQUEST_LIMITS });

const events = async (body: ReadableStream<Uint8Array>) => {
  const text = await new Response(body).text();
  return text.split("\n\n").filter((f) => f !== "").map((frame) => {
    const [event, data] = frame.split("\n");
    return { event: event!.replace("event: ", ""), data: JSON.parse(data!.replace("data: ", "")) };
  });
};

describe("the Responses API's body", () => {
  it("makes hub turns of input items: a call and its output paired by call_id, reasoning left out", () => {
    const request = parse({
      model: "gemini-2.5-flash",
      instructions: "Be brief.",
      input: [
        { role: "developer", content: "Answer in English." },
        { role: "user", content: [{ type: "input_text", text: "Weather?" }] },
        { type: "reasoning", id: "rs_1", summary: [] },
        { type: "function_call", call_id: "c1", name: "get_weather", arguments: '{"city":"Riga"}' },
        { type: "function_call_output", call_id: "c1", output: '{"t":3}' },
      ],
    });
    expect(request.system).toBe("Be brief.\n\nAnswer in English.");
    expect(request.messages).toEqual([
      { role: "user", parts: [{ type: "text", text: "Weather?" }] },
      { role: "assistant", parts: [{ type: "tool_call", id: "c1", name: "get_weather", args: { city: "Riga" } }] },
      { role: "user", parts: [{ type: "tool_result", id: "c1", name: "get_weather", result: '{"t":3}' }] },
    ]);
  });

  it.each([
    [{ tools: [{ type: "web_search" }] }, "tools[0].type"],
    [{ include: ["file_search_call.results"] }, "include"],
    [{ background: true }, "background"],
  ])("sends %j to an OpenAI model as given, and lists it for another provider's model to refuse by name", (more, field) => {
    const request = parse({ model: "gpt-4o", input: "hi", ...more });
    expect(request.dialectBody).toMatchObject({ dialect: "openai", endpoint: "responses" });
    expect(request.only).toMatchObject({ dialect: "openai", fields: [{ field }] });
    // Continuing a stored conversation is a translation for every model: refused at once.
    const error = refusal(() => parse({ model: "gpt-4o", input: "hi", previous_response_id: "resp_1", ...more }));
    expect(error.details?.field).toBe(field);
  });

  it.each([
    [{ input: [{ type: "function_call_output", call_id: "nope", output: "x" }] }, "input[0].call_id"],
    [{ input: [{ type: "computer_call", id: "x" }] }, "input[0].type"],
  ])("refuses %j by name", (more, field) => {
    const error = refusal(() => parse({ model: "gemini-2.5-flash", ...more }));
    expect(error).toBeInstanceOf(GatewayError);
    expect(error.details?.field).toBe(field);
  });

  it("stores by default, as OpenAI does; store: false keeps nothing", () => {
    expect((parse({ model: "m", input: "hi" }) as ResponsesRequest).responses.store).toBe(true);
    expect((parse({ model: "m", input: "hi", store: false }) as ResponsesRequest).responses.store).toBe(false);
  });
});

describe("the Responses API's stream", () => {
  const request = parse({ model: "gemini-2.5-flash", input: "hi", stream: true }) as ResponsesRequest;
  const ctx = { requestId: "req-1", request, now: 1_763_000_000_000 };
  const text = (t: string): HubChunk => ({
    answer: { outputs: [{ index: 0, parts: [{ type: "text", text: t }], finish: null }], usage: null, modelVersion: null, id: null },
  });
  const streamOf = (chunks: () => AsyncGenerator<HubChunk>, whole: InvokeResult): InvokeStream => ({
    kind: "stream",
    model: "gemini-2.5-flash",
    key_alias: "k",
    attempts: 1,
    waited_ms: 0,
    chunks: chunks(),
    result: () => whole,
    cancel: async () => {},
  });
  const whole: InvokeResult = {
    text: "Hello",
    model: "gemini-2.5-flash",
    key_alias: "k",
    usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
    attempts: 1,
    waited_ms: 0,
    hub: {
      outputs: [{ index: 0, parts: [{ type: "text", text: "Hello" }], finish: { reason: "stop", word: "STOP" } }],
      usage: null,
      modelVersion: null,
      id: null,
    },
  };

  it("names each event, numbers them in order, and ends with the whole response", async () => {
    const answer = responsesSurface.stream(streamOf(async function* () {
      yield text("Hel");
      yield text("lo");
    }, whole), ctx);
    const got = await events((answer as { stream: ReadableStream<Uint8Array> }).stream);
    expect(got.map((e) => e.event)).toEqual([
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
      "response.output_text.delta",
      "response.output_text.delta",
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.completed",
    ]);
    expect(got.map((e) => e.data.sequence_number)).toEqual([...got.keys()]);
    expect(got.every((e) => e.data.type === e.event)).toBe(true);
    expect(got.at(-1)!.data.response).toMatchObject({ status: "completed", output: [{ type: "message" }] });
  });

  it("a failure after the 200 is an error event and response.failed, never response.completed", async () => {
    const answer = responsesSurface.stream(streamOf(async function* () {
      yield text("Hel");
      throw new GatewayError("upstream_error", "the provider broke off");
    }, whole), ctx);
    const got = await events((answer as { stream: ReadableStream<Uint8Array> }).stream);
    expect(got.map((e) => e.event).slice(-2)).toEqual(["error", "response.failed"]);
    expect(got.at(-2)!.data).toMatchObject({ code: "upstream_error", message: "the provider broke off" });
    expect(got.at(-1)!.data.response).toMatchObject({ status: "failed", error: { code: "server_error" } });
    expect(got.some((e) => e.event === "response.completed")).toBe(false);
  });
});
