import { describe, expect, it } from "vitest";
import { envelope } from "../../_shared/envelope.ts";
import { GatewayError, rateLimited } from "../../_shared/errors.ts";
import type { GoogleResponse } from "../../_shared/google/types.ts";
import type { InvokeResult, InvokeStream } from "../context.ts";
import { imageTokens } from "../images.ts";
import { DEFAULT_REQUEST_LIMITS, type NormalizedRequest } from "../request.ts";
import type { ModelEntry } from "../store.ts";
import {
  finishReasonOf,
  includesUsage,
  openAiErrorObject,
  openAiModel,
  openAiModels,
  openAiSurface,
  THINKING_BUDGETS,
} from "./openai.ts";

// ---- a real PNG header, built byte by byte (as images.test.ts does) -----------------------------------

const ascii = (text: string) => [...text].map((ch) => ch.charCodeAt(0));
const u32be = (n: number) => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
const chunk = (type: string, data: number[]) => [...u32be(data.length), ...ascii(type), ...data, 0, 0, 0, 0];
function png(width: number, height: number): string {
  const bytes = [
    0x89,
    0x50,
    0x4e,
    0x47,
    0x0d,
    0x0a,
    0x1a,
    0x0a,
    ...chunk("IHDR", [...u32be(width), ...u32be(height), 8, 6, 0, 0, 0]),
    ...chunk("IEND", []),
  ];
  return btoa(String.fromCharCode(...bytes));
}

// ---- helpers -----------------------------------------------------------------------------------------

const NOW = 1_763_000_000_123;
const REQUEST_ID = "req-1";

function parse(body: Record<string, unknown>, headers: Record<string, string> = {}): NormalizedRequest {
  return openAiSurface.parse({ body, headers: new Headers(headers), limits: DEFAULT_REQUEST_LIMITS });
}

function chat(more: Record<string, unknown> = {}): Record<string, unknown> {
  return { model: "gemini-2.5-flash", messages: [{ role: "user", content: "Hi" }], ...more };
}

function refusal(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (e) {
    if (e instanceof GatewayError) return e;
    throw e;
  }
  throw new Error("expected a GatewayError");
}

function ctx(request: NormalizedRequest = parse(chat())) {
  return { requestId: REQUEST_ID, request, now: NOW };
}

function result(response: GoogleResponse, more: Partial<InvokeResult> = {}): InvokeResult {
  return {
    text: "",
    model: "gemini-2.5-flash",
    key_alias: "k1",
    usage: { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 },
    attempts: 1,
    waited_ms: 0,
    finish_reason: "STOP",
    response,
    ...more,
  };
}

/** A Google stream of the given chunks; `closed` counts how often the stream was ended (normally or not). */
function fakeStream(chunks: GoogleResponse[], final: InvokeResult, failAfter?: GatewayError) {
  const seen = { closed: 0 };
  async function* produce(): AsyncGenerator<GoogleResponse> {
    try {
      for (const c of chunks) yield c;
      if (failAfter !== undefined) throw failAfter;
    } finally {
      seen.closed++;
    }
  }
  const stream: InvokeStream = {
    kind: "stream",
    model: final.model,
    key_alias: final.key_alias,
    attempts: 1,
    waited_ms: 0,
    chunks: produce(),
    result: () => final,
  };
  return { stream, seen };
}

/** The data of each SSE frame of a body, parsed (`[DONE]` kept as the string). */
async function frames(body: ReadableStream<Uint8Array>): Promise<unknown[]> {
  const text = await new Response(body).text();
  return text.split("\n\n").filter((f) => f !== "").map((f) => {
    expect(f.startsWith("data: ")).toBe(true);
    const data = f.slice("data: ".length);
    return data === "[DONE]" ? data : JSON.parse(data);
  });
}

type Chunk = {
  id: string;
  object: string;
  model: string;
  created: number;
  choices: Array<{ index: number; delta: Record<string, unknown>; finish_reason: string | null }>;
  usage?: unknown;
};

// ---- parse -------------------------------------------------------------------------------------------

describe("parse: messages", () => {
  it("joins system and developer messages into the system text and turns the rest into Gemini turns", () => {
    const req = parse(chat({
      model: "models/gemini-2.5-flash",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "developer", content: [{ type: "text", text: "Answer in French." }] },
        { role: "user", content: "Hello", name: "ana" },
        { role: "assistant", content: "Bonjour", refusal: null, annotations: [] },
        { role: "user", content: [{ type: "text", text: "Again" }] },
      ],
    }));
    expect(req.model).toBe("gemini-2.5-flash");
    expect(req.system).toBe("Be brief.\n\nAnswer in French.");
    expect(req.contents).toEqual([
      { role: "user", parts: [{ text: "Hello" }] },
      { role: "model", parts: [{ text: "Bonjour" }] },
      { role: "user", parts: [{ text: "Again" }] },
    ]);
    expect(req.includeCandidates).toBe(false);
    expect(req.stream).toBe(false);
    expect(req.imageTokens).toBe(0);
  });

  it("takes an image as a data URL, checked and counted like any inline image", () => {
    const data = png(1000, 500);
    const req = parse(chat({
      messages: [{
        role: "user",
        content: [
          { type: "text", text: "What is this?" },
          { type: "image_url", image_url: { url: `data:image/png;base64,${data}`, detail: "high" } },
        ],
      }],
    }));
    expect(req.contents[0].parts).toEqual([{ text: "What is this?" }, { inlineData: { mimeType: "image/png", data } }]);
    expect(req.imageTokens).toBe(imageTokens(1000, 500));
    expect(req.imageTokens).toBeGreaterThan(0);
  });

  it("refuses an image URL to fetch, naming the part and saying to send a data URL", () => {
    const e = refusal(() =>
      parse(chat({
        messages: [{
          role: "user",
          content: [{ type: "image_url", image_url: { url: "https://example.com/cat.png" } }],
        }],
      }))
    );
    expect(e.code).toBe("unsupported_feature");
    expect(e.message).toContain("send images as data URLs");
    expect(e.details?.field).toBe("messages[0].content[0].image_url.url");
  });

  it("refuses a data URL that is not base64, an image that is not what it says, and a type Gemini is not sent", () => {
    const url = (u: string) =>
      chat({ messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: u } }] }] });
    expect(refusal(() => parse(url("data:image/png,%89PNG"))).code).toBe("invalid_request");
    expect(refusal(() => parse(url(`data:image/jpeg;base64,${png(10, 10)}`))).code).toBe("invalid_image");
    expect(refusal(() => parse(url(`data:image/gif;base64,R0lGODlh`))).code).toBe("unsupported_feature");
  });

  it("refuses part kinds it cannot send (audio, files) and the legacy function role", () => {
    const audio = refusal(() =>
      parse(
        chat({
          messages: [{ role: "user", content: [{ type: "input_audio", input_audio: { data: "", format: "wav" } }] }],
        }),
      )
    );
    expect(audio.code).toBe("unsupported_feature");
    expect(audio.details?.field).toBe("messages[0].content[0].type");
    const fn = refusal(() => parse(chat({ messages: [{ role: "function", name: "f", content: "x" }] })));
    expect(fn.code).toBe("unsupported_feature");
  });

  it("refuses a conversation with nothing to answer", () => {
    expect(refusal(() => parse(chat({ messages: [{ role: "system", content: "Be brief." }] }))).code).toBe(
      "empty_input",
    );
    expect(refusal(() => parse(chat({ messages: [{ role: "user", content: "  " }] }))).code).toBe("empty_input");
    expect(refusal(() => parse(chat({ messages: [] }))).code).toBe("invalid_request");
  });

  it("names the field of a malformed body", () => {
    const noModel = refusal(() => parse({ messages: [{ role: "user", content: "Hi" }] }));
    expect(noModel.code).toBe("invalid_request");
    expect(noModel.message).toMatch(/^model:/);
    const badRole = refusal(() => parse(chat({ messages: [{ role: "narrator", content: "Hi" }] })));
    expect(badRole.code).toBe("invalid_request");
    expect(badRole.message).toMatch(/^messages\[0\]/);
    expect(refusal(() => parse(chat({ temperature: 2.5 }))).message).toMatch(/^temperature:/);
    expect(
      refusal(() => openAiSurface.parse({ body: [], headers: new Headers(), limits: DEFAULT_REQUEST_LIMITS })).code,
    )
      .toBe("invalid_json");
  });
});

describe("parse: tool calls round trip", () => {
  const tools = [{
    type: "function",
    function: {
      name: "get_weather",
      description: "Weather of a city",
      parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
    },
  }];

  it("turns assistant tool_calls and tool messages into functionCall and functionResponse with the call's name", () => {
    const req = parse(chat({
      tools,
      messages: [
        { role: "user", content: "Weather in Paris and Oslo?" },
        {
          role: "assistant",
          content: null,
          tool_calls: [
            { id: "call_a", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
            {
              id: "call_b",
              type: "function",
              function: { name: "get_time", arguments: '{"city":"Oslo"}' },
              extra_content: { google: { thought_signature: "sig-1" } },
            },
          ],
        },
        { role: "tool", tool_call_id: "call_b", content: '{"time":"10:00"}' },
        { role: "tool", tool_call_id: "call_a", content: [{ type: "text", text: "18 C, clear" }] },
      ],
    }));
    expect(req.contents[1]).toEqual({
      role: "model",
      parts: [
        { functionCall: { name: "get_weather", args: { city: "Paris" }, id: "call_a" } },
        { functionCall: { name: "get_time", args: { city: "Oslo" }, id: "call_b" }, thoughtSignature: "sig-1" },
      ],
    });
    expect(req.contents[2]).toEqual({
      role: "user",
      parts: [{ functionResponse: { name: "get_time", response: { content: { time: "10:00" } }, id: "call_b" } }],
    });
    expect(req.contents[3]).toEqual({
      role: "user",
      parts: [{ functionResponse: { name: "get_weather", response: { content: "18 C, clear" }, id: "call_a" } }],
    });
  });

  it("refuses arguments that are not a JSON object, and a tool message that answers no earlier call", () => {
    const call = (args: string) =>
      chat({
        messages: [
          { role: "user", content: "x" },
          {
            role: "assistant",
            content: null,
            tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: args } }],
          },
        ],
      });
    const bad = refusal(() => parse(call("{city: Paris")));
    expect(bad.code).toBe("invalid_request");
    expect(bad.details?.field).toBe("messages[1].tool_calls[0].function.arguments");
    expect(refusal(() => parse(call("[1,2]"))).code).toBe("invalid_request");

    const orphan = refusal(() =>
      parse(chat({ messages: [{ role: "user", content: "x" }, { role: "tool", tool_call_id: "nope", content: "1" }] }))
    );
    expect(orphan.code).toBe("invalid_request");
    expect(orphan.details?.field).toBe("messages[1].tool_call_id");
  });

  it("declares the tools and maps tool_choice to Gemini's function calling modes", () => {
    const declared = [{
      functionDeclarations: [{
        name: "get_weather",
        description: "Weather of a city",
        parametersJsonSchema: tools[0].function.parameters,
      }],
    }];
    expect(parse(chat({ tools })).extras).toEqual({ tools: declared });
    const mode = (tool_choice: unknown) => parse(chat({ tools, tool_choice })).extras.toolConfig;
    expect(mode("none")).toEqual({ functionCallingConfig: { mode: "NONE" } });
    expect(mode("auto")).toEqual({ functionCallingConfig: { mode: "AUTO" } });
    expect(mode("required")).toEqual({ functionCallingConfig: { mode: "ANY" } });
    expect(mode({ type: "function", function: { name: "get_weather" } })).toEqual({
      functionCallingConfig: { mode: "ANY", allowedFunctionNames: ["get_weather"] },
    });
    expect(refusal(() => mode({ type: "function", function: { name: "other" } })).details?.field)
      .toBe("tool_choice.function.name");
    expect(refusal(() => parse(chat({ tool_choice: "required" }))).code).toBe("invalid_request");
    expect(parse(chat({ tool_choice: "auto" })).extras).toEqual({});
    expect(refusal(() => parse(chat({ tools: [{ type: "custom", custom: { name: "x" } }] }))).code).toBe(
      "unsupported_feature",
    );
  });
});

describe("parse: generation settings", () => {
  it("maps OpenAI's sampling fields to generationConfig", () => {
    const req = parse(chat({
      max_completion_tokens: 300,
      temperature: 1.5,
      top_p: 0.9,
      stop: ["END", "STOP"],
      n: 2,
      seed: 42,
      presence_penalty: 0.5,
      frequency_penalty: -0.5,
    }));
    expect(req.generationConfig).toEqual({
      maxOutputTokens: 300,
      temperature: 1.5,
      topP: 0.9,
      stopSequences: ["END", "STOP"],
      candidateCount: 2,
      seed: 42,
      presencePenalty: 0.5,
      frequencyPenalty: -0.5,
    });
    expect(parse(chat({ max_tokens: 50, stop: "END", n: 1 })).generationConfig).toEqual({
      maxOutputTokens: 50,
      stopSequences: ["END"],
    });
    expect(parse(chat({ max_tokens: 50, max_completion_tokens: 50 })).generationConfig).toEqual({
      maxOutputTokens: 50,
    });
    expect(refusal(() => parse(chat({ max_tokens: 50, max_completion_tokens: 60 }))).code).toBe("invalid_request");
    expect(refusal(() => parse(chat({ stop: ["a", "b", "c", "d", "e", "f"] }))).code).toBe("invalid_request");
    expect(parse(chat({ temperature: null, max_tokens: null })).generationConfig).toEqual({});
  });

  it("maps response_format to JSON mode and a JSON schema", () => {
    const schema = { type: "object", properties: { a: { type: "number" } } };
    expect(parse(chat({ response_format: { type: "text" } })).generationConfig).toEqual({});
    expect(parse(chat({ response_format: { type: "json_object" } })).generationConfig).toEqual({
      responseMimeType: "application/json",
    });
    expect(
      parse(chat({ response_format: { type: "json_schema", json_schema: { name: "answer", schema, strict: true } } }))
        .generationConfig,
    ).toEqual({ responseMimeType: "application/json", responseJsonSchema: schema });
    expect(refusal(() => parse(chat({ response_format: { type: "xml" } }))).code).toBe("invalid_request");
  });

  it("maps reasoning_effort to a thinking budget", () => {
    for (const [effort, budget] of Object.entries(THINKING_BUDGETS)) {
      expect(parse(chat({ reasoning_effort: effort })).generationConfig.thinkingConfig).toEqual({
        thinkingBudget: budget,
      });
    }
    expect(THINKING_BUDGETS.none).toBe(0);
    expect(THINKING_BUDGETS.minimal).toBe(0);
  });

  it("remembers stream_options.include_usage for the stream, off unless asked", () => {
    const streamed = parse(chat({ stream: true, stream_options: { include_usage: true } }));
    expect(streamed.stream).toBe(true);
    expect(includesUsage(streamed)).toBe(true);
    expect(includesUsage(parse(chat({ stream: true })))).toBe(false);
  });
});

describe("parse: fields the gateway cannot honour, fields it ignores, and x-eve-* headers", () => {
  it.each([
    ["logprobs", true],
    ["top_logprobs", 3],
    ["audio", { voice: "alloy", format: "mp3" }],
    ["modalities", ["text", "audio"]],
    ["prediction", { type: "content", content: "x" }],
    ["web_search_options", {}],
    ["logit_bias", { "50256": -100 }],
    ["functions", [{ name: "f" }]],
  ])("refuses %s with unsupported_feature naming it", (field, value) => {
    const e = refusal(() => parse(chat({ [field]: value })));
    expect(e.code).toBe("unsupported_feature");
    expect(e.message).toContain(field);
    expect(e.details?.field).toBe(field);
  });

  it("names every unsupported field at once", () => {
    const e = refusal(() => parse(chat({ logprobs: true, web_search_options: {} })));
    expect(e.details?.features).toEqual(["logprobs", "web_search_options"]);
  });

  it("accepts the values of those fields that ask for nothing, and the harmless fields", () => {
    const req = parse(chat({
      logprobs: false,
      modalities: ["text"],
      logit_bias: {},
      user: "u-1",
      store: false,
      metadata: { ticket: "T-9" },
      service_tier: "auto",
      parallel_tool_calls: true,
      stream_options: { include_usage: false },
    }));
    expect(req.metadata).toEqual({ ticket: "T-9" });
  });

  it("refuses a field OpenAI does not define, by name, and oversized metadata", () => {
    const e = refusal(() => parse(chat({ temprature: 1 })));
    expect(e.code).toBe("invalid_request");
    expect(e.message).toContain("temprature");
    const big = refusal(() => parse(chat({ metadata: { note: "x".repeat(2000) } })));
    expect(big.code).toBe("invalid_request");
    expect(big.details?.field).toBe("metadata");
  });

  it("takes mode, wait, request id, priority and fallbacks from the x-eve-* headers", () => {
    const defaults = parse(chat());
    expect(defaults.mode).toBe("WAIT");
    expect(defaults.maxWaitMs).toBe(DEFAULT_REQUEST_LIMITS.defaultMaxWaitMs);
    expect(defaults.requestId).toBeUndefined();

    const req = parse(chat(), {
      "x-eve-mode": "NO_WAIT",
      "x-eve-request-id": "bot-42",
      "x-eve-priority": "batch",
      "x-eve-fallback-models": "gemini-2.5-flash-lite, models/gemma-3-27b-it",
    });
    expect(req).toMatchObject({
      mode: "NO_WAIT",
      maxWaitMs: 0,
      requestId: "bot-42",
      priority: "batch",
      fallbackModels: ["gemini-2.5-flash-lite", "gemma-3-27b-it"],
    });
    expect(parse(chat(), { "x-eve-max-wait-ms": "5000" }).maxWaitMs).toBe(5000);
    expect(refusal(() => parse(chat(), { "x-eve-mode": "SOON" })).code).toBe("invalid_request");
  });
});

// ---- answer ------------------------------------------------------------------------------------------

describe("answer", () => {
  it("says a text answer as a chat.completion", () => {
    const answer = openAiSurface.answer(
      result({
        candidates: [{
          content: { role: "model", parts: [{ text: "thinking…", thought: true }, { text: "Hello!" }] },
          finishReason: "STOP",
          index: 0,
        }],
      }, { text: "Hello!" }),
      ctx(),
    );
    expect(answer.asIs).toBe(true);
    expect(answer.body).toEqual({
      id: "chatcmpl-req-1",
      object: "chat.completion",
      created: Math.floor(NOW / 1000),
      model: "gemini-2.5-flash",
      choices: [{
        index: 0,
        message: { role: "assistant", content: "Hello!", refusal: null },
        finish_reason: "stop",
        logprobs: null,
      }],
      usage: { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 },
      system_fingerprint: null,
    });
  });

  it("says function calls as tool_calls, with Google's id or one of its own, and finish_reason tool_calls", () => {
    const answer = openAiSurface.answer(
      result({
        candidates: [{
          content: {
            role: "model",
            parts: [
              { functionCall: { name: "get_weather", args: { city: "Paris" }, id: "g-1" } },
              { functionCall: { name: "get_time" }, thoughtSignature: "sig-2" },
            ],
          },
          finishReason: "STOP",
        }],
      }),
      ctx(),
    );
    const choice = (answer.body.choices as Array<Record<string, unknown>>)[0];
    expect(choice.finish_reason).toBe("tool_calls");
    expect(choice.message).toEqual({
      role: "assistant",
      content: null,
      tool_calls: [
        { id: "g-1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
        {
          id: "call_req-1_0_1",
          type: "function",
          function: { name: "get_time", arguments: "{}" },
          extra_content: { google: { thought_signature: "sig-2" } },
        },
      ],
      refusal: null,
    });
  });

  it("says each candidate of n > 1 as its own choice", () => {
    const answer = openAiSurface.answer(
      result({
        candidates: [
          { content: { role: "model", parts: [{ text: "One" }] }, finishReason: "STOP", index: 0 },
          { content: { role: "model", parts: [{ text: "Two" }] }, finishReason: "MAX_TOKENS", index: 1 },
        ],
      }, { text: "One" }),
      ctx(),
    );
    const choices = answer.body.choices as Array<
      { index: number; message: { content: string }; finish_reason: string }
    >;
    expect(choices.map((c) => [c.index, c.message.content, c.finish_reason])).toEqual([
      [0, "One", "stop"],
      [1, "Two", "length"],
    ]);
  });

  it("maps Google's finish reasons to OpenAI's", () => {
    const reasons: Array<[unknown, boolean, string]> = [
      ["STOP", false, "stop"],
      ["STOP", true, "tool_calls"],
      ["MAX_TOKENS", false, "length"],
      ["SAFETY", false, "content_filter"],
      ["RECITATION", false, "content_filter"],
      ["BLOCKLIST", false, "content_filter"],
      ["PROHIBITED_CONTENT", false, "content_filter"],
      ["SPII", false, "content_filter"],
      ["BLOCKED_SAFETY", false, "content_filter"],
      ["OTHER", false, "stop"],
      [null, false, "stop"],
    ];
    for (const [google, called, openai] of reasons) {
      expect([google, finishReasonOf(google, called)]).toEqual([google, openai]);
    }

    const filtered = openAiSurface.answer(
      result({ candidates: [{ content: { role: "model", parts: [] }, finishReason: "SAFETY" }] }),
      ctx(),
    );
    expect((filtered.body.choices as Array<{ finish_reason: string }>)[0].finish_reason).toBe("content_filter");
  });

  it("answers a blocked prompt (no candidate) with one filtered choice", () => {
    const answer = openAiSurface.answer(
      result({ promptFeedback: { blockReason: "SAFETY" } }, { finish_reason: "BLOCKED_SAFETY" }),
      ctx(),
    );
    expect(answer.body.choices).toEqual([{
      index: 0,
      message: { role: "assistant", content: null, refusal: null },
      finish_reason: "content_filter",
      logprobs: null,
    }]);
  });

  it("answers a stored result without Google's response from the gateway's own fields", () => {
    const stored = result({}, { text: "Stored answer", finish_reason: "MAX_TOKENS" });
    delete stored.response;
    const choices = openAiSurface.answer(stored, ctx()).body.choices as Array<Record<string, unknown>>;
    expect(choices).toEqual([{
      index: 0,
      message: { role: "assistant", content: "Stored answer", refusal: null },
      finish_reason: "length",
      logprobs: null,
    }]);
  });
});

// ---- stream ------------------------------------------------------------------------------------------

const usageMetadata = (prompt: number, out: number) => ({
  promptTokenCount: prompt,
  candidatesTokenCount: out,
  totalTokenCount: prompt + out,
});
const TEXT_CHUNKS: GoogleResponse[] = [
  {
    candidates: [{ content: { role: "model", parts: [{ text: "Hel" }] }, index: 0 }],
    usageMetadata: usageMetadata(5, 1),
  },
  {
    candidates: [{ content: { role: "model", parts: [{ text: "lo" }] }, finishReason: "STOP", index: 0 }],
    usageMetadata: usageMetadata(5, 2),
  },
];
const FINAL = result(TEXT_CHUNKS[1], {
  text: "Hello",
  usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 },
});

describe("stream", () => {
  it("relays Google's chunks as chat.completion.chunk frames, then [DONE]", async () => {
    const { stream, seen } = fakeStream(TEXT_CHUNKS, FINAL);
    const answer = openAiSurface.stream(stream, ctx(parse(chat({ stream: true }))));
    expect(answer.headers["content-type"]).toContain("text/event-stream");
    const got = await frames(answer.stream);
    expect(got.at(-1)).toBe("[DONE]");
    const chunks = got.slice(0, -1) as Chunk[];
    for (const c of chunks) {
      expect(c).toMatchObject({ id: "chatcmpl-req-1", object: "chat.completion.chunk", model: "gemini-2.5-flash" });
      expect(c.created).toBe(Math.floor(NOW / 1000));
      expect("usage" in c).toBe(false);
    }
    expect(chunks.map((c) => [c.choices[0].delta, c.choices[0].finish_reason])).toEqual([
      [{ role: "assistant", content: "Hel" }, null],
      [{ content: "lo" }, null],
      [{}, "stop"],
    ]);
    expect(seen.closed).toBe(1);
  });

  it("with include_usage, says usage: null on each chunk and ends with a usage chunk of no choices", async () => {
    const { stream } = fakeStream(TEXT_CHUNKS, FINAL);
    const got = await frames(
      openAiSurface.stream(stream, ctx(parse(chat({ stream: true, stream_options: { include_usage: true } })))).stream,
    );
    expect(got.at(-1)).toBe("[DONE]");
    const chunks = got.slice(0, -1) as Chunk[];
    expect(chunks.slice(0, -1).every((c) => c.usage === null && c.choices.length === 1)).toBe(true);
    expect(chunks.at(-1)).toMatchObject({
      choices: [],
      usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 },
    });
  });

  it("streams tool calls with their index, and n > 1 choices apart", async () => {
    const chunks: GoogleResponse[] = [
      {
        candidates: [
          { content: { role: "model", parts: [{ functionCall: { name: "f", args: { a: 1 } } }] }, index: 0 },
          { content: { role: "model", parts: [{ text: "B" }] }, index: 1 },
        ],
      },
      {
        candidates: [
          {
            content: { role: "model", parts: [{ functionCall: { name: "g", args: {} } }] },
            finishReason: "STOP",
            index: 0,
          },
          { content: { role: "model", parts: [{ text: "b" }] }, finishReason: "MAX_TOKENS", index: 1 },
        ],
      },
    ];
    const { stream } = fakeStream(chunks, result(chunks[1]));
    const got = (await frames(openAiSurface.stream(stream, ctx()).stream)).slice(0, -1) as Chunk[];
    const of = (index: number) => got.flatMap((c) => c.choices).filter((c) => c.index === index);
    expect(of(0).map((c) => [c.delta, c.finish_reason])).toEqual([
      [{
        role: "assistant",
        tool_calls: [{
          index: 0,
          id: "call_req-1_0_0",
          type: "function",
          function: { name: "f", arguments: '{"a":1}' },
        }],
      }, null],
      [
        {
          tool_calls: [{ index: 1, id: "call_req-1_0_1", type: "function", function: { name: "g", arguments: "{}" } }],
        },
        null,
      ],
      [{}, "tool_calls"],
    ]);
    expect(of(1).map((c) => [c.delta, c.finish_reason])).toEqual([
      [{ role: "assistant", content: "B" }, null],
      [{ content: "b" }, null],
      [{}, "length"],
    ]);
  });

  it("finishes a choice Google left open, so every choice ends", async () => {
    const { stream } = fakeStream([TEXT_CHUNKS[0]], result(TEXT_CHUNKS[0], { finish_reason: null }));
    const got = (await frames(openAiSurface.stream(stream, ctx()).stream)).slice(0, -1) as Chunk[];
    expect(got.at(-1)?.choices[0]).toMatchObject({ index: 0, delta: {}, finish_reason: "stop" });
  });

  it("sends a replayed answer as one content chunk, its finish, the usage and [DONE]", async () => {
    const replay = result({
      candidates: [{ content: { role: "model", parts: [{ text: "lo" }] }, finishReason: "STOP", index: 0 }],
    }, { text: "Hello", replayed: true });
    const request = parse(chat({ stream: true, stream_options: { include_usage: true } }));
    const got = await frames(openAiSurface.stream(replay, ctx(request)).stream);
    expect(got.at(-1)).toBe("[DONE]");
    const chunks = got.slice(0, -1) as Chunk[];
    expect(chunks.map((c) => c.choices)).toEqual([
      [{ index: 0, delta: { role: "assistant", content: "Hello" }, finish_reason: null, logprobs: null }],
      [{ index: 0, delta: {}, finish_reason: "stop", logprobs: null }],
      [],
    ]);
    expect(chunks[2].usage).toEqual({ prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 });
  });

  it("says an error thrown mid-stream as one OpenAI error frame, and no [DONE]", async () => {
    const cut = new GatewayError("upstream_error", "Google's stream broke off.", { details: { cut_by: "google" } });
    const { stream, seen } = fakeStream([TEXT_CHUNKS[0]], FINAL, cut);
    const got = await frames(openAiSurface.stream(stream, ctx()).stream);
    expect(got).toHaveLength(2);
    expect((got[0] as Chunk).choices[0].delta).toEqual({ role: "assistant", content: "Hel" });
    expect(got[1]).toEqual({
      error: {
        message: "Google's stream broke off.",
        type: "api_error",
        param: null,
        code: "upstream_error",
        details: { cut_by: "google" },
        request_id: REQUEST_ID,
      },
    });
    expect(seen.closed).toBe(1);
  });

  it("stops Google's stream when the caller goes away", async () => {
    const { stream, seen } = fakeStream([...TEXT_CHUNKS, ...TEXT_CHUNKS], FINAL);
    const reader = openAiSurface.stream(stream, ctx()).stream.getReader();
    await reader.read();
    await reader.cancel();
    expect(seen.closed).toBe(1);
  });
});

// ---- errors ------------------------------------------------------------------------------------------

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

// ---- models ------------------------------------------------------------------------------------------

describe("models", () => {
  const entry = (model: string, aliases: string[]): ModelEntry => ({
    model,
    aliases,
    displayName: null,
    inputTokenLimit: null,
    outputTokenLimit: null,
    rpm: null,
    tpm: null,
    rpd: null,
    supportsSystemInstruction: true,
    supportsJsonMode: true,
    supportsTools: true,
  });

  it("lists each model under its id and each alias", () => {
    const list = openAiModels([entry("gemini-2.5-flash", ["flash"]), entry("gemma-3-27b-it", [])], NOW);
    const created = Math.floor(NOW / 1000);
    expect(list).toEqual({
      object: "list",
      data: [
        { id: "gemini-2.5-flash", object: "model", created, owned_by: "google" },
        { id: "flash", object: "model", created, owned_by: "google" },
        { id: "gemma-3-27b-it", object: "model", created, owned_by: "google" },
      ],
    });
    expect(openAiModel(entry("gemini-2.5-flash", ["flash"]), "flash", NOW)).toEqual({
      id: "flash",
      object: "model",
      created,
      owned_by: "google",
    });
  });
});
