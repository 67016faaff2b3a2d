// stream: Google's chunks (or a replayed answer) → OpenAI's chat.completion.chunk frames over SSE.
import { describe, expect, it } from "vitest";
import { GatewayError } from "../../../_shared/errors.ts";
import { type GeminiAnswer, hubAnswerOf } from "../../../_shared/providers/google/answer.ts";
import type { HubChunk } from "../../../_shared/upstream/hub.ts";
import type { InvokeResult, InvokeStream } from "../../attempt/context.ts";
import { openAiSurface } from "../openai.ts";
import { chat, ctx, NOW, parse, REQUEST_ID, result } from "./test-fixtures.ts";

/**
 * A stream of the given chunks (hub answers, or pieces with a provider's own chunk beside them);
 * `closed` counts how often the stream was ended (normally or not).
 */
type FixtureChunk = { answer: GeminiAnswer | null; own?: HubChunk["own"] };

function fakeStream(chunks: Array<GeminiAnswer | FixtureChunk>, final: InvokeResult, failAfter?: GatewayError) {
  const seen = { closed: 0 };
  async function* produce(): AsyncGenerator<HubChunk> {
    try {
      for (const c of chunks) {
        // The fixtures' answers are written in Google's words: the hub's are read from them.
        const { answer, own } = "answer" in c ? c as FixtureChunk : { answer: c, own: undefined };
        yield { answer: answer === null ? null : hubAnswerOf(answer), ...(own === undefined ? {} : { own }) };
      }
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
    cancel: () => Promise.resolve(),
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

const usageMetadata = (prompt: number, out: number) => ({
  promptTokenCount: prompt,
  candidatesTokenCount: out,
  totalTokenCount: prompt + out,
});
const TEXT_CHUNKS: GeminiAnswer[] = [
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
    const chunks: GeminiAnswer[] = [
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

  it("says thought signatures where Google's OpenAI endpoint does: on a tool call's delta, and on the delta of a text's last piece", async () => {
    const chunks: GeminiAnswer[] = [
      {
        candidates: [{
          content: {
            role: "model",
            parts: [{ functionCall: { name: "f", args: {} }, thoughtSignature: "sig-call" }, {
              functionCall: { name: "g", args: {} },
            }],
          },
          index: 0,
        }, { content: { role: "model", parts: [{ text: "B" }] }, index: 1 }],
      },
      {
        candidates: [{ content: { role: "model", parts: [{ text: "", thoughtSignature: "sig-text" }] }, index: 1 }],
      },
    ];
    const { stream } = fakeStream(chunks, result(chunks[1]));
    const got = (await frames(openAiSurface.stream(stream, ctx()).stream)).slice(0, -1) as Chunk[];
    const deltas = (index: number) => got.flatMap((c) => c.choices).filter((c) => c.index === index).map((c) => c.delta);
    expect(deltas(0)[0]!.tool_calls).toEqual([
      {
        index: 0,
        id: "call_req-1_0_0",
        type: "function",
        function: { name: "f", arguments: "{}" },
        extra_content: { google: { thought_signature: "sig-call" } },
      },
      { index: 1, id: "call_req-1_0_1", type: "function", function: { name: "g", arguments: "{}" } },
    ]);
    expect(deltas(1).slice(0, 2)).toEqual([
      { role: "assistant", content: "B" },
      { content: "", extra_content: { google: { thought_signature: "sig-text" } } },
    ]);
  });

  it("finishes a choice Google left open, so every choice ends", async () => {
    const { stream } = fakeStream([TEXT_CHUNKS[0]], result(TEXT_CHUNKS[0], { finish_reason: null }));
    const got = (await frames(openAiSurface.stream(stream, ctx()).stream)).slice(0, -1) as Chunk[];
    expect(got.at(-1)?.choices[0]).toMatchObject({ index: 0, delta: {}, finish_reason: "stop" });
  });

  it("sends a replayed answer as one content chunk, its finish, the usage and [DONE]", async () => {
    // A stored answer holds Google's whole answer (a stream's chunks merged).
    const replay = result({
      candidates: [{ content: { role: "model", parts: [{ text: "Hello" }] }, finishReason: "STOP", index: 0 }],
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

describe("stream of a provider that speaks OpenAI's dialect (pass-through)", () => {
  // OpenAI's chunks as it sends them with the usage chunk the gateway always asks for, each beside its
  // hub shape (null where it holds nothing of it): logprobs on a text delta, a tool call in pieces.
  const own = (choices: unknown[], more: Record<string, unknown> = {}) => ({
    id: "chatcmpl-openai-1",
    object: "chat.completion.chunk",
    created: 1_700_000_000,
    model: "gpt-4o-2024-08-06",
    service_tier: "default",
    system_fingerprint: "fp_1",
    choices,
    usage: null,
    ...more,
  });
  const logprobs = { content: [{ token: "Hi", logprob: -0.1, bytes: [72, 105], top_logprobs: [] }], refusal: null };
  const sent = [
    own([{ index: 0, delta: { role: "assistant", content: "", refusal: null }, logprobs: null, finish_reason: null }]),
    own([{ index: 0, delta: { content: "Hi" }, logprobs, finish_reason: null }]),
    own([{
      index: 0,
      delta: { tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "f", arguments: "" } }] },
      logprobs: null,
      finish_reason: null,
    }]),
    own([{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '{"a":' } }] }, logprobs: null, finish_reason: null }]),
    own([{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: "1}" } }] }, logprobs: null, finish_reason: null }]),
    own([{ index: 0, delta: {}, logprobs: null, finish_reason: "tool_calls" }]),
    own([], { usage: { prompt_tokens: 5, completion_tokens: 4, total_tokens: 9, completion_tokens_details: { reasoning_tokens: 0 } } }),
  ];
  // The hub shape of each (what the books read): the call whole at the choice's end, the usage last.
  const hub: Array<GeminiAnswer | null> = [
    null,
    { candidates: [{ index: 0, content: { role: "model", parts: [{ text: "Hi" }] } }] },
    null,
    null,
    null,
    {
      candidates: [{
        index: 0,
        content: { role: "model", parts: [{ functionCall: { name: "f", args: { a: 1 }, id: "call_1" } }] },
        finishReason: "STOP",
      }],
    },
    { candidates: [], usageMetadata: usageMetadata(5, 4) },
  ];
  const pieces: FixtureChunk[] = sent.map((body, i) => ({ answer: hub[i]!, own: { dialect: "openai", body } }));
  const final = result({}, { model: "gpt-4o", provider: "openai", usage: { prompt_tokens: 5, completion_tokens: 4, total_tokens: 9 } });

  it("each chunk reaches the caller as OpenAI sent it (logprobs, tool-call pieces as they come, its usage), under the gateway's id", async () => {
    const { stream, seen } = fakeStream(pieces, final);
    const request = parse(chat({ model: "gpt-4o", stream: true, stream_options: { include_usage: true }, logprobs: true }));
    const got = await frames(openAiSurface.stream(stream, ctx(request)).stream);
    expect(got).toEqual([...sent.map((c) => ({ ...c, id: "chatcmpl-req-1" })), "[DONE]"]);
    expect(seen.closed).toBe(1);
  });

  it("without include_usage: the usage the gateway asked for its books is not said, the rest as sent", async () => {
    const { stream } = fakeStream(pieces, final);
    const got = await frames(openAiSurface.stream(stream, ctx(parse(chat({ model: "gpt-4o", stream: true })))).stream);
    expect(got).toEqual([
      ...sent.slice(0, -1).map(({ usage: _usage, ...c }) => ({ ...c, id: "chatcmpl-req-1" })),
      "[DONE]",
    ]);
  });

  it("a stored answer replays OpenAI's completion: each choice whole with its logprobs, its finish, the usage, under the gateway's id", async () => {
    const completion = {
      id: "chatcmpl-openai-1",
      object: "chat.completion",
      created: 1_700_000_000,
      model: "gpt-4o-2024-08-06",
      choices: [{
        index: 0,
        message: { role: "assistant", content: null, refusal: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "f", arguments: "{}" } }] },
        logprobs,
        finish_reason: "tool_calls",
      }],
      usage: { prompt_tokens: 5, completion_tokens: 4, total_tokens: 9 },
      system_fingerprint: "fp_1",
    };
    const replay = { ...final, replayed: true, dialectAnswer: { dialect: "openai" as const, body: completion } };
    const request = parse(chat({ model: "gpt-4o", stream: true, stream_options: { include_usage: true } }));
    const got = await frames(openAiSurface.stream(replay, ctx(request)).stream);
    const envelope = {
      id: "chatcmpl-req-1",
      object: "chat.completion.chunk",
      created: 1_700_000_000,
      model: "gpt-4o-2024-08-06",
      system_fingerprint: "fp_1",
    };
    expect(got).toEqual([
      {
        ...envelope,
        choices: [{
          index: 0,
          delta: { ...completion.choices[0]!.message, tool_calls: [{ index: 0, ...completion.choices[0]!.message.tool_calls[0]! }] },
          logprobs,
          finish_reason: null,
        }],
        usage: null,
      },
      { ...envelope, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: "tool_calls" }], usage: null },
      { ...envelope, choices: [], usage: completion.usage },
      "[DONE]",
    ]);
  });

  it("a break-off after some chunks: those as sent, then one error frame and no [DONE]", async () => {
    const cut = new GatewayError("upstream_error", "OpenAI's stream broke off.", { details: { cut_by: "upstream" } });
    const { stream, seen } = fakeStream(pieces.slice(0, 2), final, cut);
    const got = await frames(openAiSurface.stream(stream, ctx(parse(chat({ model: "gpt-4o", stream: true })))).stream);
    expect(got).toHaveLength(3);
    expect(got[1]).toMatchObject({ choices: [{ delta: { content: "Hi" }, logprobs }] });
    expect(got[2]).toMatchObject({ error: { code: "upstream_error", details: { cut_by: "upstream" } } });
    expect(seen.closed).toBe(1);
  });
});
