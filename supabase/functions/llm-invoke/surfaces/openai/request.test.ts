// parse: an OpenAI chat.completions body → the gateway's request (messages, tools, settings, refusals).
import { describe, expect, it } from "vitest";
import { imageTokens } from "../../model/images.ts";
import { adaptToModel } from "../../model/adapt.ts";
import { DEFAULT_REQUEST_LIMITS } from "../../contract.ts";
import { includesUsage, openAiSurface, THINKING_BUDGETS } from "../openai.ts";
import { base64, png } from "../../../../../tests/support/image-bytes.ts";
import { chat, parse, refusal } from "./test-fixtures.ts";
import { MAX_THOUGHT_SIGNATURE_CHARS } from "./messages.ts";

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
    expect("includeCandidates" in req).toBe(false); // the native route's alone
    expect(req.stream).toBe(false);
    expect(req.imageTokens).toBe(0);
  });

  it("takes an image as a data URL, checked and counted like any inline image", () => {
    const data = base64(png(1000, 500));
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
    expect(refusal(() => parse(url(`data:image/jpeg;base64,${base64(png(10, 10))}`))).code).toBe("invalid_image");
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

  it("turns assistant tool_calls and tool messages into functionCall and functionResponse ({output}: the text as given) with the call's name", () => {
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
      parts: [{ functionResponse: { name: "get_time", response: { output: '{"time":"10:00"}' }, id: "call_b" } }],
    });
    expect(req.contents[3]).toEqual({
      role: "user",
      parts: [{ functionResponse: { name: "get_weather", response: { output: "18 C, clear" }, id: "call_a" } }],
    });
  });

  it("puts a text answer's thought signature back on its last text part; null signatures are as none", () => {
    const req = parse(chat({
      messages: [
        { role: "user", content: "Hi" },
        {
          role: "assistant",
          content: [{ type: "text", text: "Hello" }, { type: "text", text: " there" }],
          extra_content: { google: { thought_signature: "sig-text" } },
        },
        { role: "user", content: "And?" },
        {
          role: "assistant",
          content: "More",
          extra_content: null,
          tool_calls: [{
            id: "call_n",
            type: "function",
            function: { name: "get_time", arguments: "{}" },
            extra_content: { google: { thought_signature: null } },
          }],
        },
        { role: "tool", tool_call_id: "call_n", content: "10:00" },
      ],
    }));
    expect(req.contents[1]!.parts).toEqual([{ text: "Hello" }, { text: " there", thoughtSignature: "sig-text" }]);
    expect(req.contents[3]!.parts).toEqual([
      { text: "More" },
      { functionCall: { name: "get_time", args: {}, id: "call_n" } },
    ]);
  });

  it("refuses a thought signature over 64 KiB, on a tool call or on the message, with a 400 naming it", () => {
    const long = "A".repeat(MAX_THOUGHT_SIGNATURE_CHARS + 1);
    const withSignature = (onCall: string | null, onMessage: string | null) =>
      chat({
        messages: [
          { role: "user", content: "x" },
          {
            role: "assistant",
            content: "y",
            extra_content: { google: { thought_signature: onMessage } },
            tool_calls: [{
              id: "c",
              type: "function",
              function: { name: "f", arguments: "{}" },
              extra_content: { google: { thought_signature: onCall } },
            }],
          },
          { role: "tool", tool_call_id: "c", content: "z" },
        ],
      });
    for (const [onCall, onMessage] of [[long, null], [null, long]] as const) {
      const e = refusal(() => parse(withSignature(onCall, onMessage)));
      expect(e.code).toBe("invalid_request");
      expect(e.message).toContain("thought_signature");
      expect(e.message).toContain("at most 65536 characters");
    }
    // At the bound, it passes untouched.
    const atBound = "B".repeat(MAX_THOUGHT_SIGNATURE_CHARS);
    expect(parse(withSignature(atBound, null)).contents[1]!.parts.at(-1)).toMatchObject({ thoughtSignature: atBound });
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
    expect(refusal(() => parse(chat({ tools: [{ type: "retrieval" }] }))).details?.field).toBe("tools[0].type");
  });

  it("takes what only OpenAI's models take (custom tools, allowed_tools in auto) and lists it as OpenAI's own", () => {
    const fn = (name: string) => ({ type: "function", function: { name, parameters: { type: "object" } } });
    const tools = [fn("get_weather"), fn("get_time"), { type: "custom", custom: { name: "sql" } }];
    const allowed = (mode: string, names: string[]) => ({
      type: "allowed_tools",
      allowed_tools: { mode, tools: names.map((name) => ({ type: "function", function: { name } })) },
    });
    const auto = parse(chat({ tools, tool_choice: allowed("auto", ["get_time"]) }));
    expect(auto.toolChoice).toEqual({ mode: "auto" });
    expect(auto.tools?.map((t) => t.name)).toEqual(["get_weather", "get_time"]);
    expect(auto.only).toEqual({
      dialect: "openai",
      fields: [
        { field: "tools[2]", why: expect.stringContaining("custom tools") },
        { field: "tool_choice.allowed_tools.mode", why: expect.stringContaining('mode "auto"') },
      ],
    });
    // The caller's body goes whole to an OpenAI model.
    expect(auto.dialectBody?.body.tool_choice).toEqual(allowed("auto", ["get_time"]));
    // In required mode the hub says it: only the listed ones, no field of OpenAI's own.
    const required = parse(chat({ tools: tools.slice(0, 2), tool_choice: allowed("required", ["get_time"]) }));
    expect(required.toolChoice).toEqual({ mode: "required", only: ["get_time"] });
    expect(required.only).toBeUndefined();
    expect(refusal(() => parse(chat({ tools, tool_choice: allowed("auto", ["nope"]) }))).details?.field)
      .toBe("tool_choice.allowed_tools.tools[0]");
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

describe("parse: fields only OpenAI's models honour, fields it ignores, and x-eve-* headers", () => {
  const gemini = {
    model: "gemini-2.5-flash",
    supportsSystemInstruction: true,
    supportsJsonMode: true,
    supportsTools: true,
  };
  it.each([
    ["logprobs", true],
    ["top_logprobs", 3],
    ["audio", { voice: "alloy", format: "mp3" }],
    ["modalities", ["text", "audio"]],
    ["prediction", { type: "content", content: "x" }],
    ["web_search_options", {}],
    ["logit_bias", { "50256": -100 }],
    ["functions", [{ name: "f" }]],
  ])(
    "keeps %s for an OpenAI model; another provider's refuses it with unsupported_feature naming it",
    (field, value) => {
      const req = parse(chat({ [field]: value }));
      expect(req.only?.fields.map((f) => f.field)).toEqual([field]);
      expect(adaptToModel({ ...gemini, model: "gpt-4o", dialect: "openai" }, req).dialectBody?.body).toMatchObject({
        [field]: value,
      });
      const e = refusal(() => adaptToModel({ ...gemini, dialect: "google" }, req));
      expect(e.code).toBe("unsupported_feature");
      expect(e.message).toContain(field);
      expect(e.details?.field).toBe(field);
    },
  );

  it("names every such field at once", () => {
    const e = refusal(() => adaptToModel(gemini, parse(chat({ logprobs: true, web_search_options: {} }))));
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
    expect(req.only).toBeUndefined();
  });

  it("takes every service_tier OpenAI defines: flex and priority ask Google; auto, default and scale leave it to the class", () => {
    expect(parse(chat({ service_tier: "flex" })).serviceTier).toBe("flex");
    expect(parse(chat({ service_tier: "priority" })).serviceTier).toBe("priority");
    for (const tier of ["auto", "default", "scale", null]) {
      expect(parse(chat({ service_tier: tier })).serviceTier).toBeUndefined();
    }
    expect(refusal(() => parse(chat({ service_tier: "turbo" }))).code).toBe("invalid_request");
  });

  it("refuses a field OpenAI does not define, by name, and oversized metadata", () => {
    const e = refusal(() => parse(chat({ temprature: 1 })));
    expect(e.code).toBe("invalid_request");
    expect(e.message).toContain("temprature");
    const big = refusal(() => parse(chat({ metadata: { note: "x".repeat(2000) } })));
    expect(big.code).toBe("invalid_request");
    expect(big.details?.field).toBe("metadata");
    const own = refusal(() => parse(chat({ metadata: { $gateway: "mine" } })));
    expect(own.code).toBe("invalid_request");
    expect(own.message).toContain("$gateway");
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
